package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// setEnv clears every variable Load reads, then sets vars.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range []string{"HEROKU_API_KEY", "BACKUP_TARGETS", "ARCHIVE_URL", "BACKUP_MODE", "BACKUP_MAX_AGE",
		"BACKUP_CAPTURE_TIMEOUT", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_FORCE_PATH_STYLE", "S3_STORAGE_CLASS", "S3_SSE", "S3_SSE_KMS_KEY_ID",
		"HEROKU_API_URL", "HEROKU_DATA_API_URL", "LOG_LEVEL", "LOG_FORMAT", "HEARTBEAT_URL", "NOTIFY_WEBHOOK_URL", "NOTIFY_ON", "ARCHIVE_CONCURRENCY", "ARCHIVE_PART_SIZE", "ARCHIVE_MEMORY_LIMIT", "ARCHIVE_CHECK"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

const secretKey = "hrku-SECRET-9b1f2e3d4c5b6a7f"
const awsSecret = "aws-SECRET-wJalrXUtnFEMI/K7MDENG"

func valid() map[string]string {
	return map[string]string{
		"HEROKU_API_KEY": secretKey, "BACKUP_TARGETS": "shop-prod shop-staging:HEROKU_POSTGRESQL_PINK",
		"ARCHIVE_URL": "s3://acme-db-archive/pgbackups/", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": awsSecret,
	}
}

func TestLoadValid(t *testing.T) {
	setEnv(t, valid())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{"shop-prod", "DATABASE_URL"}, {"shop-staging", "HEROKU_POSTGRESQL_PINK"}}
	if len(c.Targets) != 2 || c.Targets[0] != want[0] || c.Targets[1] != want[1] {
		t.Errorf("targets %v", c.Targets)
	}
	if c.Archive != (Archive{Scheme: "s3", Bucket: "acme-db-archive", Prefix: "pgbackups"}) {
		t.Errorf("archive %+v", c.Archive)
	}
	if c.Mode != "capture" || c.MaxAge != 26*time.Hour || c.CaptureTimeout != 6*time.Hour || c.S3StorageClass != "STANDARD" ||
		c.HerokuAPIURL != "https://api.heroku.com" || c.HerokuDataAPIURL != "https://api.data.heroku.com" ||
		c.LogLevel != "info" || c.LogFormat != "logfmt" || c.Region != "eu-west-1" {
		t.Errorf("defaults: %+v", c)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), secretKey) {
		t.Error("Config renders the API key")
	}
}

func TestLoadFileArchiveNeedsNoAWS(t *testing.T) {
	setEnv(t, map[string]string{"HEROKU_API_KEY": secretKey, "BACKUP_TARGETS": "shop", "ARCHIVE_URL": "file:///var/archive"})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Archive != (Archive{Scheme: "file", Dir: "/var/archive"}) {
		t.Errorf("archive %+v", c.Archive)
	}
}

func TestDatabaseForms(t *testing.T) {
	for _, db := range []string{"DATABASE_URL", "DATABASE", "HEROKU_POSTGRESQL_PINK_URL", "HEROKU_POSTGRESQL_PINK",
		"postgresql-globular-83867", "other-app::DATABASE_URL"} {
		env := valid()
		env["BACKUP_TARGETS"] = "shop:" + db + ", shop-two"
		setEnv(t, env)
		c, err := Load()
		if err != nil {
			t.Errorf("%s: %v", db, err)
			continue
		}
		if c.Targets[0].Database != db || c.Targets[1] != (Target{"shop-two", "DATABASE_URL"}) {
			t.Errorf("%s: %v", db, c.Targets)
		}
	}
}

func TestMistakes(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		del  []string
		want string // the variable named
		fix  string // a piece of the fix
	}{
		{"no key", nil, []string{"HEROKU_API_KEY"}, "HEROKU_API_KEY", "authorizations:create"},
		{"key with space", map[string]string{"HEROKU_API_KEY": "abc def"}, nil, "HEROKU_API_KEY", "only the token"},
		{"no targets", nil, []string{"BACKUP_TARGETS"}, "BACKUP_TARGETS", "shop-prod"},
		{"uppercase app", map[string]string{"BACKUP_TARGETS": "Shop"}, nil, "BACKUP_TARGETS", "heroku apps"},
		{"empty database", map[string]string{"BACKUP_TARGETS": "shop:"}, nil, "BACKUP_TARGETS", "app:DATABASE"},
		{"odd database", map[string]string{"BACKUP_TARGETS": "shop:DATA$BASE"}, nil, "BACKUP_TARGETS", "DATABASE_URL"},
		{"duplicate", map[string]string{"BACKUP_TARGETS": "shop shop:DATABASE"}, nil, "BACKUP_TARGETS", "once"},
		{"no archive", nil, []string{"ARCHIVE_URL"}, "ARCHIVE_URL", "s3://bucket"},
		{"http archive", map[string]string{"ARCHIVE_URL": "https://bucket.s3.amazonaws.com/x"}, nil, "ARCHIVE_URL", "file:///"},
		{"bad bucket", map[string]string{"ARCHIVE_URL": "s3://My_Bucket"}, nil, "ARCHIVE_URL", "lowercase"},
		{"relative dir", map[string]string{"ARCHIVE_URL": "file://archive"}, nil, "ARCHIVE_URL", "three slashes"},
		{"mode", map[string]string{"BACKUP_MODE": "newest"}, nil, "BACKUP_MODE", "latest"},
		{"max age", map[string]string{"BACKUP_MAX_AGE": "2 days"}, nil, "BACKUP_MAX_AGE", "26h"},
		{"negative timeout", map[string]string{"BACKUP_CAPTURE_TIMEOUT": "-1h"}, nil, "BACKUP_CAPTURE_TIMEOUT", "positive"},
		{"no region", nil, []string{"AWS_REGION"}, "AWS_REGION", "eu-west-1"},
		{"half pair", nil, []string{"AWS_SECRET_ACCESS_KEY"}, "AWS_SECRET_ACCESS_KEY", "both keys"},
		{"no credentials", nil, []string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}, "AWS_ACCESS_KEY_ID", "pgoffsite policy"},
		{"http endpoint elsewhere", map[string]string{"AWS_ENDPOINT_URL_S3": "http://minio.example.com"}, nil, "AWS_ENDPOINT_URL_S3", "https"},
		{"path style", map[string]string{"S3_FORCE_PATH_STYLE": "yes"}, nil, "S3_FORCE_PATH_STYLE", "true or false"},
		{"storage class", map[string]string{"S3_STORAGE_CLASS": "COLD"}, nil, "S3_STORAGE_CLASS", "GLACIER_IR"},
		{"sse", map[string]string{"S3_SSE": "aes256gcm"}, nil, "S3_SSE", "aws:kms"},
		{"kms key alone", map[string]string{"S3_SSE_KMS_KEY_ID": "k"}, nil, "S3_SSE_KMS_KEY_ID", "S3_SSE=aws:kms"},
		{"heroku http", map[string]string{"HEROKU_API_URL": "http://api.heroku.com"}, nil, "HEROKU_API_URL", "https"},
		{"data api garbage", map[string]string{"HEROKU_DATA_API_URL": "api.data.heroku.com"}, nil, "HEROKU_DATA_API_URL", "https://host"},
		{"log level", map[string]string{"LOG_LEVEL": "verbose"}, nil, "LOG_LEVEL", "debug"},
		{"log format", map[string]string{"LOG_FORMAT": "text"}, nil, "LOG_FORMAT", "logfmt"},
		{"heartbeat http", map[string]string{"HEARTBEAT_URL": "http://hc-ping.com/abc"}, nil, "HEARTBEAT_URL", "https"},
		{"webhook garbage", map[string]string{"NOTIFY_WEBHOOK_URL": "hooks.slack.com/x"}, nil, "NOTIFY_WEBHOOK_URL", "https://host"},
		{"notify on", map[string]string{"NOTIFY_ON": "sometimes"}, nil, "NOTIFY_ON", "always"},
		{"concurrency", map[string]string{"ARCHIVE_CONCURRENCY": "0"}, nil, "ARCHIVE_CONCURRENCY", "1 to 64"},
		{"check", map[string]string{"ARCHIVE_CHECK": "none"}, nil, "ARCHIVE_CHECK", "full"},
		{"part size unit", map[string]string{"ARCHIVE_PART_SIZE": "8 megs"}, nil, "ARCHIVE_PART_SIZE", "64MiB"},
		{"part too small", map[string]string{"ARCHIVE_PART_SIZE": "1MiB"}, nil, "ARCHIVE_PART_SIZE", "5MiB to 5GiB"},
		{"memory too small", map[string]string{"ARCHIVE_MEMORY_LIMIT": "16MiB"}, nil, "ARCHIVE_MEMORY_LIMIT", "lower ARCHIVE_PART_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := valid()
			for k, v := range tt.set {
				env[k] = v
			}
			for _, k := range tt.del {
				delete(env, k)
			}
			setEnv(t, env)
			_, err := Load()
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v, want Problems", err)
			}
			found := false
			for _, p := range ps {
				found = found || (p.Var == tt.want && strings.Contains(p.String(), tt.fix))
			}
			if !found {
				t.Errorf("no problem for %s mentioning %q in:\n%s", tt.want, tt.fix, err)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), awsSecret) {
				t.Error("a secret appears in the message")
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	setEnv(t, map[string]string{"BACKUP_TARGETS": "Shop", "ARCHIVE_URL": "ftp://x", "BACKUP_MODE": "x", "LOG_LEVEL": "x"})
	_, err := Load()
	for _, v := range []string{"HEROKU_API_KEY:", "BACKUP_TARGETS:", "ARCHIVE_URL:", "BACKUP_MODE:", "LOG_LEVEL:"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s missing from:\n%v", v, err)
		}
	}
}

// app.json (the Deploy button) documents the same variables, required flags and defaults.
func TestAppJSONMatches(t *testing.T) {
	raw, err := os.ReadFile("../../app.json")
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Env map[string]struct {
			Description string `json:"description"`
			Value       string `json:"value"`
			Required    bool   `json:"required"`
		} `json:"env"`
		Formation map[string]any `json:"formation"`
	}
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	for _, v := range Describe() {
		e, ok := app.Env[v.Name]
		if !ok {
			t.Errorf("app.json lacks %s", v.Name)
			continue
		}
		if e.Required != v.Required || e.Value != v.Default || e.Description == "" {
			t.Errorf("app.json %s: required=%v value=%q, want required=%v value=%q with a description", v.Name, e.Required, e.Value, v.Required, v.Default)
		}
	}
	if len(app.Env) != len(Describe()) {
		t.Errorf("app.json has %d variables, Describe %d", len(app.Env), len(Describe()))
	}
	if _, web := app.Formation["web"]; web {
		t.Error("app.json declares a web process")
	}
}

func TestStreamingBudget(t *testing.T) {
	env := valid()
	env["ARCHIVE_CONCURRENCY"] = "16"
	env["ARCHIVE_PART_SIZE"] = "16MiB"
	env["ARCHIVE_MEMORY_LIMIT"] = "128MiB"
	setEnv(t, env)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	// (2c+2) × 16 MiB ≤ 128 MiB → c = 3
	if c.Concurrency != 3 || c.PartSize != 16<<20 || c.MemoryLimit != 128<<20 {
		t.Errorf("concurrency %d part %d limit %d", c.Concurrency, c.PartSize, c.MemoryLimit)
	}
	setEnv(t, valid())
	if c, _ := Load(); c.Concurrency != 4 || c.PartSize != 8<<20 {
		t.Errorf("defaults: concurrency %d part %d", c.Concurrency, c.PartSize)
	}
}
