package config

// VarDoc documents one configuration variable; app.json carries the same facts (a test checks it).
type VarDoc struct {
	Name     string
	Required bool
	Default  string
}

// Describe lists the variables a Heroku app of pgoffsite is configured with.
func Describe() []VarDoc {
	return []VarDoc{
		{"HEROKU_API_KEY", true, ""},
		{"BACKUP_TARGETS", true, ""},
		{"ARCHIVE_URL", true, ""},
		{"BACKUP_MODE", false, "capture"},
		{"BACKUP_MAX_AGE", false, "26h"},
		{"BACKUP_CAPTURE_TIMEOUT", false, "6h"},
		{"AWS_REGION", true, ""},
		{"AWS_ACCESS_KEY_ID", true, ""},
		{"AWS_SECRET_ACCESS_KEY", true, ""},
		{"AWS_ENDPOINT_URL_S3", false, ""},
		{"S3_FORCE_PATH_STYLE", false, "false"},
		{"S3_STORAGE_CLASS", false, "STANDARD"},
		{"S3_SSE", false, ""},
		{"S3_SSE_KMS_KEY_ID", false, ""},
		{"LOG_LEVEL", false, "info"},
		{"LOG_FORMAT", false, "logfmt"},
		{"HEARTBEAT_URL", false, ""},
		{"NOTIFY_WEBHOOK_URL", false, ""},
		{"NOTIFY_ON", false, "failure"},
		{"ARCHIVE_CONCURRENCY", false, "4"},
		{"ARCHIVE_PART_SIZE", false, "8MiB"},
		{"ARCHIVE_MEMORY_LIMIT", false, "96MiB"},
		{"ARCHIVE_CHECK", false, "full"},
	}
}
