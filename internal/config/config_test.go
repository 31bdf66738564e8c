package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// setEnv unsets every variable Load reads, then sets vars.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	typ := reflect.TypeOf(env{})
	for i := range typ.NumField() {
		k := typ.Field(i).Tag.Get("envconfig")
		t.Setenv(k, "") // restores the original value after the test
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

const (
	secretKey = "HRKU-AAsecret9b1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9"
	awsSecret = "aws-SECRET-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// valid is a minimal valid configuration archiving to S3.
func valid() map[string]string {
	return map[string]string{
		"HEROKU_API_KEY": secretKey, "BACKUP_TARGETS": "shop-prod shop-staging:HEROKU_POSTGRESQL_PINK",
		"ARCHIVE_URL": "s3://acme-db-archive/pgbackups/", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": awsSecret,
	}
}

func with(base map[string]string, set map[string]string, del ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	for _, k := range del {
		delete(out, k)
	}
	return out
}

func loadProblems(t *testing.T, vars map[string]string) Problems {
	t.Helper()
	setEnv(t, vars)
	c, err := Load()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load() = %v, %v; want Problems", c, err)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Errorf("Load returned a Config with its problems: %v", c)
	}
	return ps
}

func TestLoadValidS3(t *testing.T) {
	setEnv(t, valid())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HerokuAPIKey:      secretKey,
		Targets:           []Target{{App: "shop-prod", Database: "DATABASE_URL"}, {App: "shop-staging", Database: "HEROKU_POSTGRESQL_PINK"}},
		Method:            "pgbackups",
		Archives:          []spec.Archive{s3store.Settings{Bucket: "acme-db-archive", Prefix: "pgbackups"}.Archive()},
		Archive:           s3store.Settings{Bucket: "acme-db-archive", Prefix: "pgbackups"}.Archive(),
		Mode:              "capture",
		MaxAge:            26 * time.Hour,
		CaptureTimeout:    6 * time.Hour,
		Region:            "eu-west-1",
		S3StorageClass:    "STANDARD",
		HerokuAPIURL:      "https://api.heroku.com",
		HerokuDataAPIURL:  "https://api.data.heroku.com",
		LogLevel:          "info",
		LogFormat:         "logfmt",
		NotifyOn:          "failure",
		Parallel:          1,
		PgDumpJobs:        1,
		DynoSize:          "standard-1X",
		Concurrency:       16,
		UploadConcurrency: 6,
		PartSize:          8 << 20,
		MemoryLimit:       96 << 20,
		Check:             "auto",
		Bucket:            Bucket{TransitionDays: 30, TransitionClass: "GLACIER", ExpireDays: 400, NoncurrentExpireDays: 30},
		RetentionZone:     time.UTC,
	}
	want.PgDumpExcludeTableData, want.PgDumpExcludeSchema = []string{}, []string{}
	want.StatusMaxShrink = 0.5                                                // STATUS_MAX_SHRINK's default
	want.Drill = Drill{Plan: heroku.PostgresPlans[0], Timeout: 2 * time.Hour} // DRILL_PLAN's and DRILL_TIMEOUT's defaults
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %#v\nwant %#v", plainConfig(c), plainConfig(want))
	}
	if got := c.Archive.String(); got != "s3://acme-db-archive/pgbackups" {
		t.Errorf("Archive.String() = %q", got)
	}
	if got := c.Targets[0].String(); got != "shop-prod:DATABASE_URL" {
		t.Errorf("Target.String() = %q", got)
	}
}

// plainConfig shows every field of a Config in a failure message (its own GoString hides some).
func plainConfig(c Config) string {
	type plain Config
	return fmt.Sprintf("%+v", plain(c))
}

func TestLoadValidFileNeedsNoAWS(t *testing.T) {
	// S3-only variables are not looked at for a file archive, even when they are wrong.
	setEnv(t, map[string]string{"HEROKU_API_KEY": secretKey, "BACKUP_TARGETS": "shop", "ARCHIVE_URL": "file:///var/archive/",
		"S3_SSE": "rot13", "S3_STORAGE_CLASS": "COLD", "AWS_ACCESS_KEY_ID": "AKIAONLYHALF", "AWS_ENDPOINT_URL_S3": "ftp://x"})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Archive != (filestore.Settings{Dir: "/var/archive"}.Archive()) || c.Archive.String() != "file:///var/archive" {
		t.Errorf("archive %+v", c.Archive)
	}
	if c.Region != "" || c.S3Endpoint != "" {
		t.Errorf("S3 settings recorded for a file archive: region %q endpoint %q", c.Region, c.S3Endpoint)
	}
}

func TestDefaults(t *testing.T) {
	// Set to the empty string counts as unset: the default applies.
	for _, empty := range []bool{false, true} {
		vars := valid()
		if empty {
			for _, d := range Describe() {
				if _, set := vars[d.Name]; !set {
					vars[d.Name] = ""
				}
			}
		}
		setEnv(t, vars)
		c, err := Load()
		if err != nil {
			t.Fatalf("empty=%v: %v", empty, err)
		}
		got := map[string]any{"BACKUP_MODE": c.Mode, "BACKUP_MAX_AGE": c.MaxAge, "BACKUP_CAPTURE_TIMEOUT": c.CaptureTimeout,
			"S3_FORCE_PATH_STYLE": c.S3ForcePathStyle, "S3_STORAGE_CLASS": c.S3StorageClass, "S3_SSE": c.S3SSE,
			"HEROKU_API_URL": c.HerokuAPIURL, "HEROKU_DATA_API_URL": c.HerokuDataAPIURL, "LOG_LEVEL": c.LogLevel,
			"LOG_FORMAT": c.LogFormat, "NOTIFY_ON": c.NotifyOn, "ARCHIVE_CONCURRENCY": c.Concurrency, "ARCHIVE_CHECK": c.Check}
		want := map[string]any{"BACKUP_MODE": "capture", "BACKUP_MAX_AGE": 26 * time.Hour, "BACKUP_CAPTURE_TIMEOUT": 6 * time.Hour,
			"S3_FORCE_PATH_STYLE": false, "S3_STORAGE_CLASS": "STANDARD", "S3_SSE": "",
			"HEROKU_API_URL": "https://api.heroku.com", "HEROKU_DATA_API_URL": "https://api.data.heroku.com", "LOG_LEVEL": "info",
			"LOG_FORMAT": "logfmt", "NOTIFY_ON": "failure", "ARCHIVE_CONCURRENCY": 16, "ARCHIVE_CHECK": "auto"}
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("empty=%v: %s = %v, want %v", empty, k, got[k], want[k])
			}
		}
	}
}

func TestSettings(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{
		"BACKUP_MODE": "latest", "BACKUP_MAX_AGE": "49h30m", "BACKUP_CAPTURE_TIMEOUT": "90m",
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-2", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
		"S3_FORCE_PATH_STYLE": "true", "S3_STORAGE_CLASS": "standard_ia", "S3_SSE": "AWS:KMS", "S3_SSE_KMS_KEY_ID": "alias/pgoffsite",
		"HEROKU_API_URL": "http://localhost:5000/", "HEROKU_DATA_API_URL": "http://[::1]:5001", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json",
		"ARCHIVE_CHECK": "header",
	}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "latest" || c.MaxAge != 49*time.Hour+30*time.Minute || c.CaptureTimeout != 90*time.Minute ||
		c.Region != "us-east-2" || c.S3Endpoint != "http://127.0.0.1:9000" || !c.S3ForcePathStyle ||
		c.S3StorageClass != "STANDARD_IA" || c.S3SSE != "aws:kms" || c.S3SSEKMSKeyID != "alias/pgoffsite" ||
		c.HerokuAPIURL != "http://localhost:5000" || c.HerokuDataAPIURL != "http://[::1]:5001" ||
		c.LogLevel != "debug" || c.LogFormat != "json" || c.Check != "header" {
		t.Errorf("%s", plainConfig(c))
	}

	// The S3-specific endpoint wins, as it does in the AWS SDK.
	setEnv(t, with(valid(), map[string]string{"AWS_ENDPOINT_URL": "https://generic.example.com", "AWS_ENDPOINT_URL_S3": "https://s3.example.com"}))
	if c, err := Load(); err != nil || c.S3Endpoint != "https://s3.example.com" {
		t.Errorf("S3Endpoint = %q, %v", c.S3Endpoint, err)
	}
	// Other credential sources than the key pair are enough.
	for _, v := range []string{"AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		setEnv(t, with(valid(), map[string]string{v: "x"}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
		if _, err := Load(); err != nil {
			t.Errorf("credentials from %s: %v", v, err)
		}
	}
}

func TestDatabaseForms(t *testing.T) {
	for _, db := range []string{"DATABASE_URL", "DATABASE", "HEROKU_POSTGRESQL_PINK_URL", "HEROKU_POSTGRESQL_PINK",
		"postgresql-globular-83867", "other-app::DATABASE_URL", "other-app::HEROKU_POSTGRESQL_PINK"} {
		t.Run(db, func(t *testing.T) {
			setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": "shop:" + db + ", shop-two"}))
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			want := []Target{{App: "shop", Database: db}, {App: "shop-two", Database: "DATABASE_URL"}}
			if !reflect.DeepEqual(c.Targets, want) {
				t.Errorf("targets %v, want %v", c.Targets, want)
			}
			if got := c.Targets[0].String(); got != "shop:"+db {
				t.Errorf("String() = %q", got)
			}
		})
	}
}

func TestTargetSeparators(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": " ,shop,\tshop-two:DATABASE\n\nthird-app , ,other:HEROKU_POSTGRESQL_RED_URL,"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{App: "shop", Database: "DATABASE_URL"}, {App: "shop-two", Database: "DATABASE"}, {App: "third-app", Database: "DATABASE_URL"}, {App: "other", Database: "HEROKU_POSTGRESQL_RED_URL"}}
	if !reflect.DeepEqual(c.Targets, want) {
		t.Errorf("targets %v, want %v", c.Targets, want)
	}
}

func TestArchiveForms(t *testing.T) {
	tests := []struct {
		raw  string
		want spec.Archive
		str  string
	}{
		{"s3://acme", s3store.Settings{Bucket: "acme"}.Archive(), "s3://acme"},
		{"s3://acme/", s3store.Settings{Bucket: "acme"}.Archive(), "s3://acme"},
		{"s3://acme//a//b/", s3store.Settings{Bucket: "acme", Prefix: "a/b"}.Archive(), "s3://acme/a/b"},
		{"S3://my.bucket-01/db/prod", s3store.Settings{Bucket: "my.bucket-01", Prefix: "db/prod"}.Archive(), "s3://my.bucket-01/db/prod"},
		{"  s3://acme/x  ", s3store.Settings{Bucket: "acme", Prefix: "x"}.Archive(), "s3://acme/x"},
		{"file:///mnt/archive", filestore.Settings{Dir: "/mnt/archive"}.Archive(), "file:///mnt/archive"},
		{"file:///mnt//archive/", filestore.Settings{Dir: "/mnt/archive"}.Archive(), "file:///mnt/archive"},
		{"s3://acme/a.b/..c/.d", s3store.Settings{Bucket: "acme", Prefix: "a.b/..c/.d"}.Archive(), "s3://acme/a.b/..c/.d"},
	}
	for _, tt := range tests {
		setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": tt.raw}))
		c, err := Load()
		if err != nil {
			t.Errorf("%q: %v", tt.raw, err)
			continue
		}
		if c.Archive != tt.want || c.Archive.String() != tt.str {
			t.Errorf("%q: %+v %q, want %+v %q", tt.raw, c.Archive, c.Archive, tt.want, tt.str)
		}
	}
}

func TestMistakes(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		del  []string
		want string // the variable named
		msg  string // a piece of the message
		fix  string // a piece of the fix
	}{
		{"no key", nil, []string{"HEROKU_API_KEY"}, "HEROKU_API_KEY", "not set", "authorizations:create"},
		{"key with space", map[string]string{"HEROKU_API_KEY": "Bearer abcdef12345"}, nil, "HEROKU_API_KEY", "spaces", "only the token"},
		{"key with non-ASCII", map[string]string{"HEROKU_API_KEY": "abc…def12345"}, nil, "HEROKU_API_KEY", "characters", "only the token"},
		{"no targets", nil, []string{"BACKUP_TARGETS"}, "BACKUP_TARGETS", "no database", "shop-prod"},
		{"only commas", map[string]string{"BACKUP_TARGETS": " , ,"}, nil, "BACKUP_TARGETS", "no database", "shop-prod"},
		{"uppercase app", map[string]string{"BACKUP_TARGETS": "Shop"}, nil, "BACKUP_TARGETS", `"Shop" is not a valid Heroku app name`, `heroku apps`},
		{"short app", map[string]string{"BACKUP_TARGETS": "ab"}, nil, "BACKUP_TARGETS", `"ab"`, "lowercase letters"},
		{"long app", map[string]string{"BACKUP_TARGETS": strings.Repeat("a", 31)}, nil, "BACKUP_TARGETS", "not a valid Heroku app name", "heroku apps"},
		{"app starts with digit", map[string]string{"BACKUP_TARGETS": "1shop"}, nil, "BACKUP_TARGETS", `"1shop"`, "heroku apps"},
		{"empty database", map[string]string{"BACKUP_TARGETS": "shop:"}, nil, "BACKUP_TARGETS", "no database after the colon", "app:DATABASE"},
		{"odd database", map[string]string{"BACKUP_TARGETS": "shop:DATA$BASE"}, nil, "BACKUP_TARGETS", `"DATA$BASE" is not a database name`, "other-app::DATABASE_URL"},
		{"double colon", map[string]string{"BACKUP_TARGETS": "shop::DATABASE_URL"}, nil, "BACKUP_TARGETS", "not a database name", "HEROKU_POSTGRESQL_PINK"},
		{"duplicate", map[string]string{"BACKUP_TARGETS": "shop shop:DATABASE"}, nil, "BACKUP_TARGETS", "listed twice", "once"},
		{"duplicate _URL", map[string]string{"BACKUP_TARGETS": "shop:HEROKU_POSTGRESQL_PINK,shop:HEROKU_POSTGRESQL_PINK_URL"}, nil, "BACKUP_TARGETS", "listed twice", "once"},
		{"duplicate own app", map[string]string{"BACKUP_TARGETS": "shop:shop::DATABASE_URL shop"}, nil, "BACKUP_TARGETS", "listed twice", "once"},
		{"database URL", map[string]string{"BACKUP_TARGETS": "postgres://u:p4ss@host:5432/db"}, nil, "BACKUP_TARGETS", "contains a URL", "never a database URL"},
		{"no archive", nil, []string{"ARCHIVE_URL"}, "ARCHIVE_URL", "not set", "s3://bucket/optional/prefix, sftp://user@host/absolute/dir or file:///"},
		{"https archive", map[string]string{"ARCHIVE_URL": "https://bucket.s3.amazonaws.com/x"}, nil, "ARCHIVE_URL", "neither s3://, sftp:// nor file://", "s3://bucket/optional/prefix, sftp://"},
		{"bare bucket", map[string]string{"ARCHIVE_URL": "acme-db-archive"}, nil, "ARCHIVE_URL", "neither", "s3://bucket/optional/prefix, sftp://"},
		{"s3 without bucket", map[string]string{"ARCHIVE_URL": "s3:acme"}, nil, "ARCHIVE_URL", "names no bucket", "two slashes"},
		{"bucket uppercase", map[string]string{"ARCHIVE_URL": "s3://My_Bucket"}, nil, "ARCHIVE_URL", "only lowercase letters", "S3 console"},
		{"bucket too short", map[string]string{"ARCHIVE_URL": "s3://ab/x"}, nil, "ARCHIVE_URL", "3 to 63", "S3 console"},
		{"bucket ends with dash", map[string]string{"ARCHIVE_URL": "s3://acme-/x"}, nil, "ARCHIVE_URL", "begin and end", "S3 console"},
		{"bucket two dots", map[string]string{"ARCHIVE_URL": "s3://acme..db"}, nil, "ARCHIVE_URL", "two dots", "S3 console"},
		{"bucket IP", map[string]string{"ARCHIVE_URL": "s3://192.168.5.4"}, nil, "ARCHIVE_URL", "IP address", "S3 console"},
		{"bucket reserved", map[string]string{"ARCHIVE_URL": "s3://xn--acme"}, nil, "ARCHIVE_URL", "reserved", "S3 console"},
		{"bucket endpoint host", map[string]string{"ARCHIVE_URL": "s3://acme.s3.eu-west-1.amazonaws.com/x"}, nil, "ARCHIVE_URL", "endpoint", "S3 console"},
		{"bucket with port", map[string]string{"ARCHIVE_URL": "s3://acme:9000/x"}, nil, "ARCHIVE_URL", "not a valid S3 bucket name", "S3 console"},
		{"archive with unknown parameter", map[string]string{"ARCHIVE_URL": "s3://acme/x?versionId=3"}, nil, "ARCHIVE_URL", `unknown parameter "versionId"`, "endpoint=, region=, path_style=, storage_class=, sse=, keys=NAME"},
		{"file with query", map[string]string{"ARCHIVE_URL": "file:///mnt/x?mode=1"}, nil, "ARCHIVE_URL", "query string", "only s3:// and sftp://"},
		{"fragment", map[string]string{"ARCHIVE_URL": "s3://acme/x#y"}, nil, "ARCHIVE_URL", "fragment", "s3://bucket"},
		{"relative dir", map[string]string{"ARCHIVE_URL": "file://archive"}, nil, "ARCHIVE_URL", "not an absolute directory", "three slashes"},
		{"dot-dot in prefix", map[string]string{"ARCHIVE_URL": "s3://archive/../x"}, nil, "ARCHIVE_URL", `".." path segment`, "without them"},
		{"dot-dot at the end", map[string]string{"ARCHIVE_URL": "s3://archive/x/.."}, nil, "ARCHIVE_URL", `".." path segment`, "without them"},
		{"encoded dot-dot", map[string]string{"ARCHIVE_URL": "s3://archive/a/%2e%2e/x"}, nil, "ARCHIVE_URL", `".." path segment`, "without them"},
		{"dot in prefix", map[string]string{"ARCHIVE_URL": "s3://archive/a/./x"}, nil, "ARCHIVE_URL", `"." or ".." path segment`, "without them"},
		{"dot-dot in dir", map[string]string{"ARCHIVE_URL": "file:///mnt/archive/../etc"}, nil, "ARCHIVE_URL", `".." path segment`, "file:///mnt/archive"},
		{"dot in dir", map[string]string{"ARCHIVE_URL": "file:///mnt/./archive"}, nil, "ARCHIVE_URL", `"." or ".." path segment`, "file:///mnt/archive"},
		{"root dir", map[string]string{"ARCHIVE_URL": "file:///"}, nil, "ARCHIVE_URL", "is the root directory", "file:///mnt/archive"},
		{"root dir doubled", map[string]string{"ARCHIVE_URL": "file:////"}, nil, "ARCHIVE_URL", "is the root directory", "file:///mnt/archive"},
		{"mode", map[string]string{"BACKUP_MODE": "newest"}, nil, "BACKUP_MODE", `"newest" is not a mode`, "latest"},
		{"max age", map[string]string{"BACKUP_MAX_AGE": "2 days"}, nil, "BACKUP_MAX_AGE", "not a duration", "26h"},
		{"max age unitless", map[string]string{"BACKUP_MAX_AGE": "26"}, nil, "BACKUP_MAX_AGE", "not a duration", "26h"},
		{"max age zero", map[string]string{"BACKUP_MAX_AGE": "0s"}, nil, "BACKUP_MAX_AGE", "not positive", "positive"},
		{"negative timeout", map[string]string{"BACKUP_CAPTURE_TIMEOUT": "-1h"}, nil, "BACKUP_CAPTURE_TIMEOUT", "not positive", "positive"},
		{"shrink word", map[string]string{"STATUS_MAX_SHRINK": "half"}, nil, "STATUS_MAX_SHRINK", "not a percentage", "50%"},
		{"shrink whole", map[string]string{"STATUS_MAX_SHRINK": "100%"}, nil, "STATUS_MAX_SHRINK", "not a percentage", "50%"},
		{"shrink zero", map[string]string{"STATUS_MAX_SHRINK": "0"}, nil, "STATUS_MAX_SHRINK", "not a percentage", "50%"},
		{"no region", nil, []string{"AWS_REGION"}, "AWS_REGION", "not set", "eu-west-1"},
		{"no secret", nil, []string{"AWS_SECRET_ACCESS_KEY"}, "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID is", "both keys"},
		{"no key id", nil, []string{"AWS_ACCESS_KEY_ID"}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY is", "both keys"},
		{"no credentials", nil, []string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}, "AWS_ACCESS_KEY_ID", "no AWS credentials", "pgoffsite policy"},
		{"secret with newline", map[string]string{"AWS_SECRET_ACCESS_KEY": awsSecret + "\n"}, nil, "AWS_SECRET_ACCESS_KEY", "line breaks", "only the value"},
		{"http endpoint elsewhere", map[string]string{"AWS_ENDPOINT_URL_S3": "http://minio.example.com"}, nil, "AWS_ENDPOINT_URL_S3", "plain http", "loopback"},
		{"generic endpoint garbage", map[string]string{"AWS_ENDPOINT_URL": "minio:9000"}, nil, "AWS_ENDPOINT_URL", "not an absolute http(s) URL", "https://host"},
		{"path style", map[string]string{"S3_FORCE_PATH_STYLE": "yes"}, nil, "S3_FORCE_PATH_STYLE", `"yes" is not a boolean`, "true or false"},
		{"storage class", map[string]string{"S3_STORAGE_CLASS": "COLD"}, nil, "S3_STORAGE_CLASS", "not an S3 storage class", "GLACIER_IR"},
		{"sse", map[string]string{"S3_SSE": "aes256gcm"}, nil, "S3_SSE", "not an encryption mode", "aws:kms"},
		{"kms key alone", map[string]string{"S3_SSE_KMS_KEY_ID": "alias/k"}, nil, "S3_SSE_KMS_KEY_ID", "not aws:kms", "S3_SSE=aws:kms"},
		{"kms key with AES256", map[string]string{"S3_SSE": "AES256", "S3_SSE_KMS_KEY_ID": "alias/k"}, nil, "S3_SSE_KMS_KEY_ID", "not aws:kms", "unset S3_SSE_KMS_KEY_ID"},
		{"heroku http", map[string]string{"HEROKU_API_URL": "http://api.heroku.com"}, nil, "HEROKU_API_URL", "plain http", "https"},
		{"heroku http private", map[string]string{"HEROKU_API_URL": "http://10.0.0.5:5000"}, nil, "HEROKU_API_URL", "plain http", "loopback"},
		{"heroku no host", map[string]string{"HEROKU_API_URL": "https://:443"}, nil, "HEROKU_API_URL", "not an absolute", "https://host"},
		{"data api garbage", map[string]string{"HEROKU_DATA_API_URL": "api.data.heroku.com"}, nil, "HEROKU_DATA_API_URL", "not an absolute", "https://host"},
		{"data api ftp", map[string]string{"HEROKU_DATA_API_URL": "ftp://127.0.0.1"}, nil, "HEROKU_DATA_API_URL", "not an absolute", "https://host"},
		{"log level", map[string]string{"LOG_LEVEL": "verbose"}, nil, "LOG_LEVEL", `"verbose" is not a level`, "debug"},
		{"log format", map[string]string{"LOG_FORMAT": "text"}, nil, "LOG_FORMAT", `"text" is not a format`, "logfmt"},
		{"heartbeat http", map[string]string{"HEARTBEAT_URL": "http://hc-ping.com/abc"}, nil, "HEARTBEAT_URL", "plain http", "https"},
		{"webhook garbage", map[string]string{"NOTIFY_WEBHOOK_URL": "hooks.slack.com/x"}, nil, "NOTIFY_WEBHOOK_URL", "not an absolute", "https://host"},
		{"notify on", map[string]string{"NOTIFY_ON": "sometimes"}, nil, "NOTIFY_ON", "not a choice", "always"},
		{"concurrency", map[string]string{"ARCHIVE_CONCURRENCY": "0"}, nil, "ARCHIVE_CONCURRENCY", "1 to 64", "16 (the default)"},
		{"check", map[string]string{"ARCHIVE_CHECK": "none"}, nil, "ARCHIVE_CHECK", "not a check", "auto"},
		{"part size unit", map[string]string{"ARCHIVE_PART_SIZE": "8 megs"}, nil, "ARCHIVE_PART_SIZE", "not a size", "64MiB"},
		{"part too small", map[string]string{"ARCHIVE_PART_SIZE": "1MiB"}, nil, "ARCHIVE_PART_SIZE", "part sizes", "5MiB to 5GiB"},
		{"size overflow", map[string]string{"ARCHIVE_MEMORY_LIMIT": "99999999999999GiB"}, nil, "ARCHIVE_MEMORY_LIMIT", "not a size", "1GiB"},
		{"memory too small", map[string]string{"ARCHIVE_MEMORY_LIMIT": "16MiB"}, nil, "ARCHIVE_MEMORY_LIMIT", "less than the 20 MiB that two download ranges and two parts of 8MiB need", "lower ARCHIVE_PART_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := loadProblems(t, with(valid(), tt.set, tt.del...))
			found := false
			for _, p := range ps {
				found = found || (p.Var == tt.want && strings.Contains(p.Message, tt.msg) && strings.Contains(p.Fix, tt.fix))
			}
			if !found {
				t.Errorf("no problem for %s with message ~%q and fix ~%q in:\n%s", tt.want, tt.msg, tt.fix, ps)
			}
			for _, p := range ps {
				if p.Fix == "" {
					t.Errorf("no fix: %s", p)
				}
			}
			if strings.Contains(ps.Error(), secretKey) || strings.Contains(ps.Error(), awsSecret) {
				t.Errorf("a secret appears in the message:\n%s", ps)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	ps := loadProblems(t, with(valid(), map[string]string{"BACKUP_TARGETS": "Shop"}))
	want := "  BACKUP_TARGETS: \"Shop\" is not a valid Heroku app name — use the app's name as shown by `heroku apps` (lowercase letters, digits and dashes), here probably \"shop\""
	if ps.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", ps.Error(), want)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	// A bad bucket name must not hide the S3 problems, nor an unparsable duration the rest.
	setEnv(t, map[string]string{
		"BACKUP_TARGETS": "Shop ok-app ok-app", "ARCHIVE_URL": "s3://Bad_Bucket/x", "BACKUP_MODE": "x", "BACKUP_MAX_AGE": "1 day",
		"BACKUP_CAPTURE_TIMEOUT": "forever", "S3_FORCE_PATH_STYLE": "maybe", "S3_SSE": "x", "HEROKU_API_URL": "http://api.heroku.com",
		"LOG_LEVEL": "x", "LOG_FORMAT": "x",
	})
	_, err := Load()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v", err)
	}
	got := map[string]int{}
	for _, p := range ps {
		got[p.Var]++
	}
	want := map[string]int{"HEROKU_API_KEY": 1, "BACKUP_TARGETS": 2, "ARCHIVE_URL": 1, "BACKUP_MODE": 1, "BACKUP_MAX_AGE": 1,
		"BACKUP_CAPTURE_TIMEOUT": 1, "AWS_REGION": 1, "AWS_ACCESS_KEY_ID": 1, "S3_FORCE_PATH_STYLE": 1, "S3_SSE": 1,
		"HEROKU_API_URL": 1, "LOG_LEVEL": 1, "LOG_FORMAT": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems per variable %v, want %v; all:\n%s", got, want, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(ps) {
		t.Errorf("%d lines for %d problems", n, len(ps))
	}
}

func TestSecretsNeverShown(t *testing.T) {
	long := strings.Repeat("k", 40) + secretKey // longer than a quote is clipped to
	tests := []struct {
		name   string
		set    map[string]string
		del    []string
		hidden []string
	}{
		{"API key pasted as a target", map[string]string{"BACKUP_TARGETS": secretKey}, nil, []string{secretKey}},
		{"API key pasted as the archive", map[string]string{"ARCHIVE_URL": secretKey}, nil, []string{secretKey}},
		{"API key inside a long value", map[string]string{"HEROKU_API_KEY": long, "LOG_LEVEL": long}, nil, []string{long, long[:50]}},
		{"API key prefix in a clipped value", map[string]string{"LOG_FORMAT": secretKey + strings.Repeat("x", 80)}, nil, []string{secretKey, secretKey[:30]}},
		{"API key with a space", map[string]string{"HEROKU_API_KEY": "Bearer " + secretKey}, nil, []string{secretKey}},
		{"AWS secret pasted as the mode", map[string]string{"BACKUP_MODE": awsSecret}, nil, []string{awsSecret}},
		{"AWS secret with a newline", map[string]string{"AWS_SECRET_ACCESS_KEY": awsSecret + "\n", "S3_SSE": awsSecret}, nil, []string{awsSecret}},
		{"AWS secret without key id", map[string]string{"S3_STORAGE_CLASS": awsSecret}, []string{"AWS_ACCESS_KEY_ID"}, []string{awsSecret}},
		{"session token", map[string]string{"AWS_SESSION_TOKEN": "FwoGZXIvYXdzEBYaDH7tokentoken", "S3_SSE": "FwoGZXIvYXdzEBYaDH7tokentoken"}, nil, []string{"FwoGZXIvYXdzEBYaDH7tokentoken"}},
		{"password in a database URL target", map[string]string{"BACKUP_TARGETS": "postgres://u:hunter2pass@db.example.com/x"}, nil, []string{"hunter2pass"}},
		{"credentials in the archive URL", map[string]string{"ARCHIVE_URL": "s3://AKIA:hunter2pass@acme/x"}, nil, []string{"hunter2pass"}},
		{"webhook secret path", map[string]string{"NOTIFY_WEBHOOK_URL": "http://hooks.slack.com/services/T0/B0/hunter2pass"}, nil, []string{"hunter2pass"}},
		{"webhook without scheme", map[string]string{"NOTIFY_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/hunter2pass"}, nil, []string{"hunter2pass"}},
		{"heartbeat token in query", map[string]string{"HEARTBEAT_URL": "http://hc-ping.com/?key=hunter2pass"}, nil, []string{"hunter2pass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := loadProblems(t, with(valid(), tt.set, tt.del...))
			for _, h := range tt.hidden {
				if strings.Contains(ps.Error(), h) {
					t.Errorf("%q appears in:\n%s", h, ps)
				}
			}
		})
	}
}

func TestConfigNeverRendersKey(t *testing.T) {
	setEnv(t, valid())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c), string(j)} {
		if strings.Contains(s, secretKey) {
			t.Errorf("Config renders the API key: %s", s)
		}
		if !strings.Contains(s, redacted) || !strings.Contains(s, "acme-db-archive") {
			t.Errorf("Config renders without its settings: %s", s)
		}
	}
	var back map[string]any
	if err := json.Unmarshal(j, &back); err != nil || back["Region"] != "eu-west-1" {
		t.Errorf("JSON %s: %v", j, err)
	}
	if c.HerokuAPIKey != secretKey {
		t.Error("the key itself must stay usable")
	}
}

// Each command is stopped by the mistakes of the variables it reads, and only by those.
func TestLoadForReadsTheCommandsVariables(t *testing.T) {
	setEnv(t, with(valid(), nil, "HEROKU_API_KEY", "BACKUP_TARGETS"))
	if _, err := LoadFor("restore", Except("HEROKU_API_KEY")); err != nil {
		t.Errorf("restore --to postgres://: %v", err)
	}
	for _, cmd := range []string{"verify", "status"} {
		_, err := LoadFor(cmd)
		if err == nil || !strings.Contains(err.Error(), "BACKUP_TARGETS") || strings.Contains(err.Error(), "HEROKU_API_KEY") {
			t.Errorf("LoadFor(%s) = %v", cmd, err)
		}
	}
	for _, cmd := range []string{"restore", "restore-app"} {
		_, err := LoadFor(cmd)
		if err == nil || strings.Contains(err.Error(), "BACKUP_TARGETS") || !strings.Contains(err.Error(), "HEROKU_API_KEY") {
			t.Errorf("LoadFor(%s) = %v", cmd, err)
		}
	}
	for _, cmd := range []string{"backup", "bundle", "check", "drill"} {
		_, err := LoadFor(cmd)
		if err == nil || !strings.Contains(err.Error(), "BACKUP_TARGETS") || !strings.Contains(err.Error(), "HEROKU_API_KEY") {
			t.Errorf("LoadFor(%s) = %v", cmd, err)
		}
	}
	for _, cmd := range []string{"setup-bucket", "policy"} {
		if _, err := LoadFor(cmd); err != nil {
			t.Errorf("LoadFor(%s) = %v", cmd, err)
		}
	}
	if _, err := LoadFor("backups"); err == nil || !strings.Contains(err.Error(), `"backups" is not a command`) {
		t.Errorf("LoadFor(backups) = %v", err)
	}
}

// ReadBy is a command's rows: policy reads ARCHIVE_URL alone, setup-bucket no Heroku variable,
// every command ARCHIVE_URL.
func TestReadBy(t *testing.T) {
	names := func(ds []VarDoc) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Name)
		}
		return out
	}
	if got := names(ReadBy("policy")); !slices.Equal(got, []string{"ARCHIVE_URL"}) {
		t.Errorf("policy reads %v", got)
	}
	bucket := names(ReadBy("setup-bucket"))
	if !slices.Contains(bucket, "BUCKET_EXPIRE_DAYS") || !slices.Contains(bucket, "AWS_REGION") || slices.Contains(bucket, "HEROKU_API_KEY") {
		t.Errorf("setup-bucket reads %v", bucket)
	}
	for _, cmd := range Commands() {
		if !slices.Contains(names(ReadBy(cmd)), "ARCHIVE_URL") {
			t.Errorf("%s does not read ARCHIVE_URL", cmd)
		}
	}
	if got := ReadBy("backups"); got != nil {
		t.Errorf("an unknown command reads %v", names(got))
	}
}

// A mistake in each variable stops exactly the commands its row lists; one in a variable that
// another's value names (env:VAR, keys=NAME) stops the commands that open targets and
// destinations.
func TestProblemsStopTheCommandsThatReadThem(t *testing.T) {
	bad := map[string]string{"BACKUP_MODE": "sometimes", "DRILL_PLAN": "huge", "BUCKET_EXPIRE_DAYS": "never",
		"LOG_LEVEL": "loud", "S3_SSE": "rot13", "HEROKU_API_URL": "ftp://x", "BACKUP_TARGETS": "env:SHOP_URL",
		"ARCHIVE_URL": "s3://acme/a?keys=B2"}
	setEnv(t, with(valid(), bad))
	rows := map[string]VarDoc{}
	for _, d := range Describe() {
		rows[d.Name] = d
	}
	for _, cmd := range Commands() {
		_, err := LoadFor(cmd)
		got := map[string]bool{}
		var ps Problems
		errors.As(err, &ps)
		for _, p := range ps {
			got[p.Var] = true
		}
		for v := range bad {
			want := slices.Contains(rows[v].Commands, cmd) && v != "BACKUP_TARGETS" && v != "ARCHIVE_URL"
			if got[v] != want {
				t.Errorf("%s: problem of %s reported %v, want %v (%v)", cmd, v, got[v], want, err)
			}
		}
		for _, named := range []string{"SHOP_URL", "B2_ACCESS_KEY_ID"} {
			if want := slices.Contains(runs, cmd); got[named] != want {
				t.Errorf("%s: problem of %s reported %v, want %v (%v)", cmd, named, got[named], want, err)
			}
		}
	}
}

func TestLoadArchive(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BACKUP_MODE": "bad"}, "HEROKU_API_KEY", "BACKUP_TARGETS"))
	c, err := LoadArchive()
	if err != nil || s3of(c.Archive).Bucket != "acme-db-archive" || c.Region != "eu-west-1" {
		t.Errorf("LoadArchive = %v, %v", c, err)
	}
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_URL": "file:///tmp/x"}))
	if _, err := LoadArchive(); err == nil || !strings.Contains(err.Error(), "ARCHIVE_URL: is not an s3:// URL") {
		t.Errorf("LoadArchive with a file archive = %v", err)
	}
	setEnv(t, with(valid(), nil, "AWS_REGION"))
	if _, err := LoadArchive(); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("LoadArchive without a region = %v", err)
	}
}

func TestArchiveFromEnv(t *testing.T) {
	setEnv(t, map[string]string{"ARCHIVE_URL": "s3://acme/a/"})
	if a, err := ArchiveFromEnv(); err != nil || a != (s3store.Settings{Bucket: "acme", Prefix: "a"}.Archive()) {
		t.Errorf("ArchiveFromEnv = %+v, %v", a, err)
	}
	setEnv(t, map[string]string{"ARCHIVE_URL": "s3://a"})
	if _, err := ArchiveFromEnv(); err == nil || !strings.Contains(err.Error(), "ARCHIVE_URL") {
		t.Errorf("ArchiveFromEnv(s3://a) = %v", err)
	}
}

func TestStreamingBudget(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"ARCHIVE_CONCURRENCY": "16", "ARCHIVE_PART_SIZE": "16MiB", "ARCHIVE_MEMORY_LIMIT": "128MiB"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	// 17 ranges of 2 MiB + (u+1) × 16 MiB ≤ 128 MiB → u = 4: the uploads give way, the
	// download keeps its sixteen.
	if c.Concurrency != 16 || c.UploadConcurrency != 4 || c.PartSize != 16<<20 || c.MemoryLimit != 128<<20 {
		t.Errorf("concurrency %d upload %d part %d limit %d", c.Concurrency, c.UploadConcurrency, c.PartSize, c.MemoryLimit)
	}
}

// Describe is the one source of names and defaults: every field of env has its row (or is one
// of the undescribed), every row its field, and readEnv gives each unset field the row's default.
func TestDescribeMatchesEnv(t *testing.T) {
	docs := map[string]VarDoc{}
	for _, d := range Describe() {
		if _, dup := docs[d.Name]; dup {
			t.Errorf("%s described twice", d.Name)
		}
		if d.Description == "" {
			t.Errorf("%s has no description", d.Name)
		}
		if d.Required && d.Default != "" {
			t.Errorf("%s is required and has a default", d.Name)
		}
		if len(d.Commands) == 0 {
			t.Errorf("%s is read by no command", d.Name)
		}
		for _, c := range d.Commands {
			if !slices.Contains(Commands(), c) {
				t.Errorf("%s: %q is not a command", d.Name, c)
			}
		}
		docs[d.Name] = d
	}
	setEnv(t, nil)
	e, err := readEnv()
	if err != nil {
		t.Fatal(err)
	}
	typ, val := reflect.TypeOf(e), reflect.ValueOf(e)
	read := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		read[name] = true
		if f.Tag.Get("default") != "" {
			t.Errorf("%s has a default in its tag: defaults are written in Describe only", name)
		}
		d, ok := docs[name]
		switch {
		case slices.Contains(undescribed, name):
			if ok {
				t.Errorf("%s is both described and undescribed", name)
			}
		case !ok:
			t.Errorf("%s is read but not described", name)
		case val.Field(i).String() != d.Default:
			t.Errorf("%s: unset, it reads %q; Describe's default is %q", name, val.Field(i).String(), d.Default)
		}
	}
	for name := range docs {
		if !read[name] {
			t.Errorf("%s is described but never read", name)
		}
	}
	for _, name := range undescribed {
		if !read[name] {
			t.Errorf("%s is undescribed and never read", name)
		}
	}
}

// app.json's env and the configuration reference's table are what the generator writes from
// Describe; the Deploy form asks only for the required variables, what a first backup needs.
func TestDocsAreGenerated(t *testing.T) {
	for _, f := range []struct {
		path     string
		generate func([]byte) ([]byte, error)
	}{{"../../app.json", AppJSON}, {"../../" + ConfigurationPage, Configuration}} {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.generate(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want) {
			t.Errorf("%s differs from the table of variables (internal/config/vars.go): run `%s` from the repository's root", f.path, RegenerateDocs)
		}
	}
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
	n := 0
	for _, d := range Describe() {
		e, ok := app.Env[d.Name]
		if !d.Required {
			if ok {
				t.Errorf("app.json asks for %s, which a first backup does without", d.Name)
			}
			continue
		}
		n++
		if !ok || e.Required != d.Required || e.Value != d.Default || e.Description != d.Description {
			t.Errorf("app.json %s: required=%v value=%q %q\nwant required=%v value=%q %q", d.Name, e.Required, e.Value, e.Description, d.Required, d.Default, d.Description)
		}
	}
	if len(app.Env) != n {
		t.Errorf("app.json has %d variables, Describe %d", len(app.Env), n)
	}
	if _, web := app.Formation["web"]; web {
		t.Error("app.json declares a web process")
	}
}

// The generator keeps everything of app.json but its env, and of the configuration reference but
// its table; it refuses a page without the table's markers, saying which lines to put.
func TestDocsGeneratorKeepsTheRest(t *testing.T) {
	app := []byte("{\n  \"name\": \"x\",\n  \"env\": {\"OLD\": {}},\n  \"formation\": {\"worker\": {}}\n}\n")
	out, err := AppJSON(app)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if !bytes.HasPrefix(out, []byte("{\n  \"name\": \"x\",\n  \"env\": {\n    \"HEROKU_API_KEY\"")) ||
		!bytes.HasSuffix(out, []byte("\n  },\n  \"formation\": {\"worker\": {}}\n}\n")) || bytes.Contains(out, []byte("OLD")) {
		t.Errorf("AppJSON =\n%s", out)
	}
	page := []byte("# x\n\nbefore\n" + tableBegin + "\nstale-table-row\n" + tableEnd + "\nafter\n")
	out, err = Configuration(page)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if !strings.HasPrefix(text, "# x\n\nbefore\n"+tableBegin) || !strings.HasSuffix(text, tableEnd+"\nafter\n") ||
		strings.Contains(text, "stale-table-row") || !strings.Contains(text, "| `BUCKET_EXPIRE_DAYS` | no | `400` | setup-bucket |") {
		t.Errorf("Configuration =\n%s", out)
	}
	// The advanced variables have a table of their own, after the others.
	if overrides := strings.Index(text, "Overrides for tests"); overrides < 0 ||
		strings.Index(text, "`BUCKET_EXPIRE_DAYS`") < overrides || strings.Index(text, "`BACKUP_MODE`") > overrides {
		t.Errorf("Configuration does not put the advanced variables apart:\n%s", out)
	}
	if _, err := Configuration([]byte("# x\n")); err == nil || !strings.Contains(err.Error(), tableBegin) {
		t.Errorf("a page without markers: %v", err)
	}
	if _, err := AppJSON([]byte(`{"name": "x"}`)); err == nil || !strings.Contains(err.Error(), `no "env"`) {
		t.Errorf("AppJSON without env: %v", err)
	}
}

func TestBucketVars(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BUCKET_TRANSITION_DAYS": "-1", "BUCKET_TRANSITION_CLASS": "glacier_ir",
		"BUCKET_DEEP_ARCHIVE_DAYS": "200", "BUCKET_EXPIRE_DAYS": "0", "BUCKET_NONCURRENT_EXPIRE_DAYS": "7",
		"BUCKET_OBJECT_LOCK_DAYS": "30", "BUCKET_OBJECT_LOCK_MODE": "compliance"}))
	c, err := LoadArchive()
	if err != nil {
		t.Fatal(err)
	}
	want := Bucket{TransitionDays: -1, TransitionClass: "GLACIER_IR", DeepArchiveDays: 200, ExpireDays: 0,
		NoncurrentExpireDays: 7, ObjectLockDays: 30, ObjectLockMode: "COMPLIANCE"}
	if c.Bucket != want {
		t.Errorf("Bucket = %+v, want %+v", c.Bucket, want)
	}
}

// A mistake in a BUCKET_ variable is reported with the others by LoadArchive (setup-bucket), all
// at once, and never stops a backup run, which does not read them.
func TestBucketVarMistakes(t *testing.T) {
	tests := []struct {
		name, v, value, msg, fix string
	}{
		{"transition days word", "BUCKET_TRANSITION_DAYS", "thirty", `"thirty" is not a whole number of days`, "-1 to never"},
		{"transition days zero", "BUCKET_TRANSITION_DAYS", "0", "not a number of days", "-1 to never"},
		{"transition days negative", "BUCKET_TRANSITION_DAYS", "-5", "too small", "-1 to never"},
		{"transition class", "BUCKET_TRANSITION_CLASS", "COLD", `"COLD" is not a storage class`, "GLACIER_IR"},
		{"deep archive", "BUCKET_DEEP_ARCHIVE_DAYS", "1.5", "not a whole number", "180"},
		{"expire negative", "BUCKET_EXPIRE_DAYS", "-1", "too small", "0 to keep archives forever"},
		{"expire word", "BUCKET_EXPIRE_DAYS", "never", "not a whole number", "0 to keep archives forever"},
		{"noncurrent zero", "BUCKET_NONCURRENT_EXPIRE_DAYS", "0", "too small", "30"},
		{"lock days", "BUCKET_OBJECT_LOCK_DAYS", "1y", "not a whole number", "0 (the default)"},
		{"lock mode", "BUCKET_OBJECT_LOCK_MODE", "forever", `"forever" is not an Object Lock mode`, "COMPLIANCE"},
		{"lock mode alone", "BUCKET_OBJECT_LOCK_MODE", "GOVERNANCE", "BUCKET_OBJECT_LOCK_DAYS is not", "unset BUCKET_OBJECT_LOCK_MODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with(valid(), map[string]string{tt.v: tt.value}))
			_, err := LoadArchive()
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("LoadArchive = %v; want Problems", err)
			}
			found := false
			for _, p := range ps {
				found = found || (p.Var == tt.v && strings.Contains(p.Message, tt.msg) && strings.Contains(p.Fix, tt.fix))
			}
			if !found {
				t.Errorf("no problem for %s with message ~%q and fix ~%q in:\n%s", tt.v, tt.msg, tt.fix, ps)
			}
			if _, err := Load(); err != nil {
				t.Errorf("a backup run is stopped by %s: %v", tt.v, err)
			}
		})
	}
	// Several at once, with the other variables' problems.
	setEnv(t, with(valid(), map[string]string{"BUCKET_EXPIRE_DAYS": "x", "BUCKET_TRANSITION_CLASS": "COLD", "S3_SSE": "rot13"}))
	_, err := LoadArchive()
	for _, v := range []string{"BUCKET_EXPIRE_DAYS:", "BUCKET_TRANSITION_CLASS:", "S3_SSE:"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s not listed in %v", v, err)
		}
	}
}

// RETENTION and RETENTION_TIMEZONE: parsed, checked with the other variables before anything
// runs, and read by setup-bucket as well as backup. RetentionZone is never nil.
func TestRetentionVars(t *testing.T) {
	setEnv(t, valid())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Set() || c.RetentionZone != time.UTC {
		t.Errorf("unset: %v %v", c.Retention, c.RetentionZone)
	}
	setEnv(t, with(valid(), map[string]string{"RETENTION": "daily=35d weekly=13w monthly=25m yearly=7y", "RETENTION_TIMEZONE": "Pacific/Auckland"}))
	for _, load := range []func() (Config, error){func() (Config, error) { return Load() }, LoadArchive} {
		c, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if c.Retention.String() != "daily=35d weekly=13w monthly=25m yearly=7y" || c.RetentionZone.String() != "Pacific/Auckland" {
			t.Errorf("read: %v %v", c.Retention, c.RetentionZone)
		}
	}
	setEnv(t, with(valid(), map[string]string{"RETENTION": "daily=35d daily=7d monthly=3", "RETENTION_TIMEZONE": "Moon/Base"}))
	for _, load := range []func() (Config, error){func() (Config, error) { return Load() }, LoadArchive} {
		_, err := load()
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("%v, want Problems", err)
		}
		for _, want := range []string{"RETENTION: daily is given twice", "RETENTION: monthly=3", "RETENTION_TIMEZONE: \"Moon/Base\" is not a time zone", "daily=35d weekly=13w", "Europe/Berlin"} {
			if !strings.Contains(ps.Error(), want) {
				t.Errorf("problems lack %q:\n%s", want, ps)
			}
		}
	}
}

func TestStatusMaxShrink(t *testing.T) {
	for raw, want := range map[string]float64{"30%": 0.3, "30": 0.3, " 12.5% ": 0.125} {
		setEnv(t, with(valid(), map[string]string{"STATUS_MAX_SHRINK": raw}))
		c, err := Load()
		if err != nil || c.StatusMaxShrink != want {
			t.Errorf("STATUS_MAX_SHRINK=%q: %v, %v; want %v", raw, c.StatusMaxShrink, err, want)
		}
	}
}

// BACKUP_PARALLEL shares ARCHIVE_MEMORY_LIMIT: each of the targets running at once gets its
// part, by the same rule as one target's whole budget.
func TestParallelSharesMemory(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BACKUP_PARALLEL": "3", "BACKUP_TARGETS": "a-app b-app c-app d-app"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	// 96 MiB / 3 = 32 MiB per target: two 8 MiB parts in flight and one filling (24 MiB), and
	// four 2 MiB ranges (three in flight, one being read).
	if c.Parallel != 3 || c.Concurrency != 3 || c.UploadConcurrency != 2 {
		t.Errorf("parallel %d concurrency %d upload %d, want 3 3 2", c.Parallel, c.Concurrency, c.UploadConcurrency)
	}
	if d, u := FitBuffers(c.MemoryLimit/3, 16, bufferBytes(c.Archives, c.PartSize)); d != c.Concurrency || u != c.UploadConcurrency {
		t.Errorf("FitBuffers %d %d, config %d %d", d, u, c.Concurrency, c.UploadConcurrency)
	}
	// Two targets with BACKUP_PARALLEL=3 run two at once: halves.
	setEnv(t, with(valid(), map[string]string{"BACKUP_PARALLEL": "3", "BACKUP_TARGETS": "a-app b-app"}))
	if c, err = Load(); err != nil || c.Concurrency != 11 || c.UploadConcurrency != 2 {
		t.Errorf("two targets: %v concurrency %d upload %d, want 11 2", err, c.Concurrency, c.UploadConcurrency)
	}
	// 96 MiB / 5 is under the 20 MiB one target needs.
	setEnv(t, with(valid(), map[string]string{"BACKUP_PARALLEL": "5", "BACKUP_TARGETS": "a-app b-app c-app d-app e-app"}))
	_, err = Load()
	if err == nil || !strings.Contains(err.Error(), "BACKUP_PARALLEL: 5 targets at once") || !strings.Contains(err.Error(), "lower it to 4") {
		t.Errorf("want BACKUP_PARALLEL problem, got %v", err)
	}
	for v, bad := range map[string]string{"BACKUP_PARALLEL": "0", "BACKUP_FANOUT": "many", "BACKUP_DYNO_SIZE": "standard 1X;"} {
		setEnv(t, with(valid(), map[string]string{v: bad}))
		if _, err := Load(); err == nil || !strings.Contains(err.Error(), v+":") {
			t.Errorf("%s=%q: %v", v, bad, err)
		}
	}
}

func TestWithTargetsTakesTheVariablesPlace(t *testing.T) {
	setEnv(t, valid())
	c, err := Load(WithTargets("other-app:HEROKU_POSTGRESQL_PINK"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 1 || c.Targets[0].String() != "other-app:HEROKU_POSTGRESQL_PINK" {
		t.Errorf("targets = %v", c.Targets)
	}
	if got := os.Getenv("BACKUP_TARGETS"); got != valid()["BACKUP_TARGETS"] {
		t.Errorf("BACKUP_TARGETS changed to %q", got)
	}
	if _, err := Load(WithTargets("not a target!")); err == nil || !strings.Contains(err.Error(), "BACKUP_TARGETS") {
		t.Errorf("a bad --target is reported as BACKUP_TARGETS: %v", err)
	}
}

// What the platform sets is read here too: the app's name (dyno metadata), the coordinator's
// child marker, GOMEMLIMIT; and AGE_IDENTITY where archives are read back, never rendered.
func TestRuntimeVars(t *testing.T) {
	setEnv(t, valid())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.AppName != "" || c.Child || c.GoMemLimitSet || c.AgeIdentity != "" {
		t.Errorf("unset: app %q child %v gomemlimit %v identity set %v", c.AppName, c.Child, c.GoMemLimitSet, c.AgeIdentity != "")
	}
	const identity = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"
	setEnv(t, with(valid(), map[string]string{"HEROKU_APP_NAME": " backups\n", ChildVar: "1", "GOMEMLIMIT": "200MiB", "AGE_IDENTITY": identity + "\n"}))
	c, err = LoadFor("verify")
	if err != nil {
		t.Fatal(err)
	}
	if c.AppName != "backups" || !c.Child || !c.GoMemLimitSet || c.AgeIdentity != identity {
		t.Errorf("set: app %q child %v gomemlimit %v identity as set %v", c.AppName, c.Child, c.GoMemLimitSet, c.AgeIdentity == identity)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c), string(j)} {
		if strings.Contains(s, identity[20:]) {
			t.Errorf("Config renders the identity: %s", s)
		}
	}
	setEnv(t, with(valid(), map[string]string{ChildVar: "yes"}))
	if c, err := Load(); err != nil || c.Child {
		t.Errorf("%s=yes: child %v, %v", ChildVar, c.Child, err)
	}
}

// PG_DUMP_JOBS's streams share ARCHIVE_MEMORY_LIMIT as BACKUP_PARALLEL's targets do, by the same
// rule, and both at once multiply; a PG_DUMP_JOBS that cannot fit names the largest that does.
// With Heroku's own backups only, it divides nothing. The exclusion lists are lists like any other.
func TestPgDumpJobsShareMemory(t *testing.T) {
	pgdump := map[string]string{"BACKUP_METHOD": "pg_dump", "PG_DUMP_JOBS": "3", "BACKUP_TARGETS": "a-app"}
	setEnv(t, with(valid(), pgdump))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if d, u := FitBuffers(c.MemoryLimit/3, 16, bufferBytes(c.Archives, c.PartSize)); c.PgDumpJobs != 3 || d != c.Concurrency || u != c.UploadConcurrency || u != 2 {
		t.Errorf("jobs %d: concurrency %d upload %d, want a third's %d %d", c.PgDumpJobs, c.Concurrency, c.UploadConcurrency, d, u)
	}
	setEnv(t, with(valid(), map[string]string{"PG_DUMP_JOBS": "3", "BACKUP_TARGETS": "a-app"}))
	if c, err := Load(); err != nil || c.StreamsPerTarget() != 1 || c.Concurrency != 16 {
		t.Errorf("pgbackups: %v streams %d concurrency %d", err, c.StreamsPerTarget(), c.Concurrency)
	}
	setEnv(t, with(valid(), map[string]string{"BACKUP_METHOD": "pg_dump", "PG_DUMP_JOBS": "5", "BACKUP_TARGETS": "a-app"}))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PG_DUMP_JOBS: 5 streams") || !strings.Contains(err.Error(), "lower it to 4") {
		t.Errorf("want PG_DUMP_JOBS problem, got %v", err)
	}
	setEnv(t, with(valid(), map[string]string{"BACKUP_METHOD": "pg_dump", "PG_DUMP_JOBS": "3", "BACKUP_PARALLEL": "2", "BACKUP_TARGETS": "a-app b-app"}))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PG_DUMP_JOBS: 3 streams for each of 2 targets") || !strings.Contains(err.Error(), "lower it to 2") {
		t.Errorf("want PG_DUMP_JOBS × BACKUP_PARALLEL problem, got %v", err)
	}
	setEnv(t, with(valid(), map[string]string{"PG_DUMP_JOBS": "0"}))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PG_DUMP_JOBS:") {
		t.Errorf("PG_DUMP_JOBS=0: %v", err)
	}
	setEnv(t, with(valid(), map[string]string{"PG_DUMP_EXCLUDE_TABLE_DATA": "audit.*, public.\"Big\"?\"Log\"", "PG_DUMP_EXCLUDE_SCHEMA": "scratch tmp_*"}))
	c, err = Load()
	if err != nil || !slices.Equal(c.PgDumpExcludeTableData, []string{"audit.*", `public."Big"?"Log"`}) || !slices.Equal(c.PgDumpExcludeSchema, []string{"scratch", "tmp_*"}) {
		t.Errorf("%v: %q %q", err, c.PgDumpExcludeTableData, c.PgDumpExcludeSchema)
	}
}

// PG_DUMP_COMPRESS takes what pg_dump's --compress takes, and nothing else, before any request.
func TestPgDumpCompress(t *testing.T) {
	for _, v := range []string{"0", "1", "9", "none", "gzip", "gzip:4", "lz4", "lz4:3", "zstd", "zstd:19"} {
		setEnv(t, with(valid(), map[string]string{"PG_DUMP_COMPRESS": v}))
		if c, err := Load(); err != nil || c.PgDumpCompress != v {
			t.Errorf("PG_DUMP_COMPRESS=%s: %q, %v", v, c.PgDumpCompress, err)
		}
	}
	for _, v := range []string{"10", "-1", "fast", "gzip:", "zstd:long", "1 --file=/tmp/x", "lz4;rm"} {
		setEnv(t, with(valid(), map[string]string{"PG_DUMP_COMPRESS": v}))
		if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PG_DUMP_COMPRESS:") || !strings.Contains(err.Error(), "gzip level from 0 (none) to 9") {
			t.Errorf("PG_DUMP_COMPRESS=%q: %v", v, err)
		}
	}
}
