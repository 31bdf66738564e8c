package config

// VarDoc documents one configuration variable. It is the one source of each variable's name,
// default and description: app.json and the README carry the same facts (tests check both).
type VarDoc struct {
	Name        string
	Required    bool
	Default     string
	Description string
	// Advanced variables are overrides for tests, the demo or unusual setups: the README documents
	// them, but the Deploy button (app.json) does not ask for them.
	Advanced bool
}

// Describe lists every variable pgoffsite reads, in the order the README and app.json present them.
func Describe() []VarDoc {
	return []VarDoc{
		{Name: "HEROKU_API_KEY", Required: true,
			Description: "Heroku API key with access to the target apps. Use a long-lived one from `heroku authorizations:create` (keys from `heroku login` expire)."},
		{Name: "BACKUP_TARGETS", Required: true,
			Description: "Space- or comma-separated `app` or `app:DATABASE` (DATABASE defaults to DATABASE_URL; any name the Heroku CLI accepts, e.g. HEROKU_POSTGRESQL_PINK or other-app::DATABASE_URL), or `env:VAR`: a Postgres URL in the variable VAR of pgoffsite's own environment (a read-only credential attached to this app, a Dokku or any other Postgres), dumped with pg_dump and filed under VAR."},
		{Name: "ARCHIVE_URL", Required: true,
			Description: "Where archives go: one or more destinations separated by spaces, each backup read once and written to all of them. s3://bucket/optional/prefix, with query parameters for a provider other than AWS: endpoint=https://..., region=, path_style=true, storage_class=, sse=, keys=NAME (credentials from NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY instead of the AWS ones). sftp://user@host[:port]/absolute/dir (key=NAME for a private key in NAME instead of SFTP_PRIVATE_KEY). file:///absolute/dir for a mounted volume. Never credentials in the URL itself."},
		{Name: "SFTP_PRIVATE_KEY",
			Description: "For sftp:// destinations: the text of an unencrypted private key (OpenSSH or PEM) made for pgoffsite alone (ssh-keygen -t ed25519 -N ''); the dyno cannot type a passphrase. key=NAME in a destination reads the variable NAME instead."},
		{Name: "SFTP_KNOWN_HOSTS",
			Description: "For sftp:// destinations: known_hosts lines pinning each server's host key, as `ssh-keyscan -p PORT HOST` prints them (check them against the server's own fingerprint). No trust on first use: a server without a line here is refused."},
		{Name: "BACKUP_MODE", Default: "capture",
			Description: "capture: ask Heroku for a new backup; latest: archive the newest successful backup Heroku already has."},
		{Name: "BACKUP_METHOD", Default: "pgbackups",
			Description: "How Heroku targets are backed up. pgbackups: Heroku's own backups (BACKUP_MODE). pg_dump: run pg_dump against the database's URL (its attachment's config var, read through the Platform API, over TLS), for databases past PGBackups' 20 GB."},
		{Name: "PG_DUMP_PATH",
			Description: "pg_dump to run for pg_dump backups; default: pg_dump on PATH (Heroku's stacks ship a current one). It must not be older than the server."},
		{Name: "BACKUP_MAX_AGE", Default: "26h",
			Description: "In latest mode, refuse a backup older than this Go duration (a stale backup means Heroku's schedule stopped). pgoffsite status fails a target whose newest archive is older."},
		{Name: "BACKUP_CAPTURE_TIMEOUT", Default: "6h",
			Description: "How long a capture may run on Heroku before the target fails (Go duration)."},
		{Name: "STATUS_MAX_SHRINK", Default: "50%",
			Description: "pgoffsite status fails a target whose newest archive is smaller than the median of the week before by more than this percentage (a sudden drop is the classic sign of a broken dump)."},
		{Name: "AWS_REGION", Required: true,
			Description: "The bucket's region, e.g. eu-west-1."},
		{Name: "AWS_DEFAULT_REGION", Advanced: true,
			Description: "Read when AWS_REGION is not set."},
		{Name: "AWS_ACCESS_KEY_ID", Required: true,
			Description: "Access key of the uploader: it needs only s3:PutObject and s3:AbortMultipartUpload on the archive prefix."},
		{Name: "AWS_SECRET_ACCESS_KEY", Required: true,
			Description: "Secret key of the uploader."},
		{Name: "AWS_ENDPOINT_URL_S3",
			Description: "Endpoint of an S3-compatible store (MinIO, R2, B2, ...); leave empty for AWS S3."},
		{Name: "AWS_ENDPOINT_URL", Advanced: true,
			Description: "Endpoint for every AWS service; AWS_ENDPOINT_URL_S3 wins when both are set."},
		{Name: "S3_FORCE_PATH_STYLE", Default: "false",
			Description: "true for path-style requests (most S3-compatible stores need it)."},
		{Name: "S3_STORAGE_CLASS", Default: "STANDARD",
			Description: "Storage class of new archives, e.g. STANDARD or STANDARD_IA. Prefer lifecycle rules to move them to Glacier later."},
		{Name: "S3_SSE",
			Description: "Server-side encryption: empty (the bucket's default), AES256 or aws:kms."},
		{Name: "S3_SSE_KMS_KEY_ID",
			Description: "KMS key for S3_SSE=aws:kms."},
		{Name: "HEROKU_API_URL", Default: "https://api.heroku.com", Advanced: true,
			Description: "Platform API base URL: https, or http to this machine only."},
		{Name: "HEROKU_DATA_API_URL", Default: "https://api.data.heroku.com", Advanced: true,
			Description: "Data API (backups) base URL: https, or http to this machine only."},
		{Name: "LOG_LEVEL", Default: "info",
			Description: "debug, info, warn or error."},
		{Name: "LOG_FORMAT", Default: "logfmt",
			Description: "logfmt (what Heroku's log viewer and drains read) or json."},
		{Name: "HEARTBEAT_URL",
			Description: "Dead man's switch (healthchecks.io convention: /start, success, /fail), so a run that fails or never happens is noticed."},
		{Name: "NOTIFY_WEBHOOK_URL",
			Description: "Webhook for run results: a Slack incoming webhook gets a readable message, any other URL the JSON of docs/webhook.md."},
		{Name: "NOTIFY_ON", Default: "failure",
			Description: "failure: notify the webhook only when a target failed; always: after every run."},
		{Name: "ARCHIVE_CONCURRENCY", Default: "4",
			Description: "Ranges downloaded and parts uploaded to each S3 destination at once (1-64). More helps on fast links; each adds a part buffer of memory to the download and to each S3 destination."},
		{Name: "ARCHIVE_PART_SIZE", Default: "8MiB",
			Description: "Size of each download range and upload part (5MiB-5GiB). Grown automatically when an archive would need more than S3's 10,000 parts."},
		{Name: "ARCHIVE_MEMORY_LIMIT", Default: "96MiB",
			Description: "Memory the part buffers may take: (concurrency + 1) download ranges plus (upload concurrency + 1) parts per S3 destination; with several S3 destinations their uploads are lowered first, then both, to fit. The default suits a 512 MB dyno."},
		{Name: "ARCHIVE_CHECK", Default: "auto",
			Description: "auto: check the whole structure while the archive streams (TOC, every data block's framing) and decompress every block, rows counted; an archive under 64 MiB is always decompressed whole, a bigger one as long as that makes the download wait no more than one second plus 5% of its time, beyond which the table being decompressed is checked for framing only and named in the log, the summary line, the webhook and the manifest. full: decompress every block of every archive, even when that slows the run. header: check only the header. Damage a check finds fails the target, and the archive is not published."},
		{Name: "ARCHIVE_RECIPIENTS",
			Description: "age recipients (age1... X25519 keys, or ssh-ed25519 / ssh-rsa public keys), one per line: when set, every destination receives the archive encrypted to them (.dump.age). Public keys only: nothing where backups run can decrypt."},
		{Name: "AGE_IDENTITY", Advanced: true,
			Description: "verify and restore only: the text of an age identity file, to decrypt encrypted archives (or --identity FILE). backup and check refuse to run while it is set: keep the identity offline, never in the backup app's config."},
		// setup-bucket's settings (its flags override them). They are for whoever runs setup-bucket
		// with administrator keys, not for the dyno: app.json does not ask for them.
		{Name: "BUCKET_TRANSITION_DAYS", Default: "30", Advanced: true,
			Description: "setup-bucket: days before archives move to BUCKET_TRANSITION_CLASS; -1 = never (stores without Glacier)."},
		{Name: "BUCKET_TRANSITION_CLASS", Default: "GLACIER", Advanced: true,
			Description: "setup-bucket: GLACIER, GLACIER_IR or DEEP_ARCHIVE."},
		{Name: "BUCKET_DEEP_ARCHIVE_DAYS", Default: "0", Advanced: true,
			Description: "setup-bucket: days before archives move on to DEEP_ARCHIVE; 0 = never."},
		{Name: "BUCKET_EXPIRE_DAYS", Default: "400", Advanced: true,
			Description: "setup-bucket: days before archives expire; 0 = never."},
		{Name: "BUCKET_NONCURRENT_EXPIRE_DAYS", Default: "30", Advanced: true,
			Description: "setup-bucket: days before overwritten or deleted versions are removed."},
		{Name: "BUCKET_OBJECT_LOCK_DAYS", Default: "0", Advanced: true,
			Description: "setup-bucket: default Object Lock retention in days; 0 = none."},
		{Name: "BUCKET_OBJECT_LOCK_MODE", Advanced: true,
			Description: "setup-bucket: GOVERNANCE (the default with BUCKET_OBJECT_LOCK_DAYS) or COMPLIANCE."},
	}
}
