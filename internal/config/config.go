// Package config turns the environment (Heroku config vars) into a Config, reporting every
// problem at once, each with the variable's name and the fix.
package config

import (
	"encoding/json"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"reflect"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Target is one database to archive: a Heroku app's database, or (Env) a Postgres URL in
// pgoffsite's own environment, named by its variable in Database (App is then "env").
type Target struct {
	App      string
	Database string // as the Heroku CLI accepts it; DATABASE_URL when not given
	Env      bool   // BACKUP_TARGETS named env:VAR
	// URL is an env:VAR target's database URL, VAR's value. Secret: never rendered (String,
	// GoString; no JSON).
	URL string `json:"-"`
}

func (t Target) String() string {
	if t.Env {
		return "env:" + t.Database
	}
	return t.App + ":" + t.Database
}

// GoString never shows the URL either (%#v).
func (t Target) GoString() string { return "config.Target(" + t.String() + ")" }

// EnvURLs are the env:VAR targets' database URLs by VAR.
func (c Config) EnvURLs() map[string]string {
	urls := map[string]string{}
	for _, t := range c.Targets {
		if t.Env {
			urls[t.Database] = t.URL
		}
	}
	return urls
}

// Backup methods of Heroku targets (BACKUP_METHOD).
const (
	MethodPGBackups = "pgbackups" // Heroku's own backups (capture or latest)
	MethodPgDump    = "pg_dump"   // run pg_dump against the database's URL
)

// Config is pgoffsite's configuration.
type Config struct {
	HerokuAPIKey string // never rendered: see String, GoString and MarshalJSON
	Targets      []Target
	// AllTargets is BACKUP_TARGETS=all: every Heroku Postgres database the key can see, less
	// Exclude (BACKUP_EXCLUDE), joins Targets once Heroku lists them (WithDatabases).
	AllTargets bool
	Exclude    []Target
	// Archives are the destinations ARCHIVE_URL names, in its order; every backup is written to
	// all of them. Archive is the one the single-destination commands (verify, restore,
	// setup-bucket, policy) work on: the first, or the one --destination picks.
	Archives         []spec.Archive
	Archive          spec.Archive
	Mode             string // "capture" or "latest"
	Method           string // MethodPGBackups, MethodPgDump or MethodFork, for Heroku targets
	PgDumpPath       string // PG_DUMP_PATH: "" is pg_dump on PATH
	MaxAge           time.Duration
	CaptureTimeout   time.Duration
	Region           string // s3 only
	S3Endpoint       string // s3 only, for display: the AWS SDK reads the endpoint variables itself
	S3ForcePathStyle bool
	S3StorageClass   string
	S3SSE            string
	S3SSEKMSKeyID    string
	HerokuAPIURL     string // without a trailing slash
	HerokuDataAPIURL string // without a trailing slash
	LogLevel         string
	LogFormat        string
	HeartbeatURL     string
	WebhookURL       string
	NotifyOn         string // "failure" or "always"
	// PgDumpJobs is PG_DUMP_JOBS: pg_dump processes per pg_dump target, sharing one snapshot.
	PgDumpJobs int
	// PgDumpExcludeTableData and PgDumpExcludeSchema are pg_dump patterns
	// (PG_DUMP_EXCLUDE_TABLE_DATA, PG_DUMP_EXCLUDE_SCHEMA) passed to every pg_dump.
	PgDumpExcludeTableData []string
	PgDumpExcludeSchema    []string
	// PgDumpCompress is PG_DUMP_COMPRESS, pg_dump's --compress ("": pg_dump's default).
	PgDumpCompress string
	// Parallel is BACKUP_PARALLEL: targets archived at once in this process, sharing MemoryLimit.
	// Fanout is BACKUP_FANOUT: one-off dynos the run starts at once, one per target (0: none),
	// of size DynoSize (BACKUP_DYNO_SIZE).
	Parallel int
	Fanout   int
	DynoSize string
	// Streaming: ranges downloaded in flight, parts uploaded in flight per S3 destination, their
	// size, and the memory the buffers may take (both concurrencies are lowered to fit).
	Concurrency       int
	UploadConcurrency int
	PartSize          int64
	MemoryLimit       int64
	// Check is how much of the archive is checked while it streams: auto, full or header
	// (archive.CheckAuto, CheckFull, CheckHeader).
	Check string
	// Bucket is what setup-bucket makes of the bucket (BUCKET_*; its flags override them).
	Bucket Bucket
	// Recipients is ARCHIVE_RECIPIENTS as set (age recipients, one per line): "" means archives
	// are not encrypted.
	Recipients string
	// AppBundle is BACKUP_APP_BUNDLE: the backup also archives each target app's runtime.
	AppBundle bool
	// BundleSigningKey (BUNDLE_SIGNING_KEY) signs the bundles; BundleVerifyKey (BUNDLE_VERIFY_KEY)
	// is what restore-app checks them with; zero when unset. BundleHeartbeatURL
	// (BUNDLE_HEARTBEAT_URL) is the heartbeat of bundle runs, never HeartbeatURL.
	BundleSigningKey   bundle.SigningKey
	BundleVerifyKey    bundle.VerifyKey
	BundleHeartbeatURL string
	// VerifyHeartbeatURL, StatusHeartbeatURL and DrillHeartbeatURL are the heartbeats of verify,
	// status and drill runs (Heartbeat picks a command's): never HeartbeatURL, the backup's alone.
	VerifyHeartbeatURL string
	StatusHeartbeatURL string
	DrillHeartbeatURL  string
	// Retention is RETENTION parsed: the classes archives are kept as; unset (Set() false) without
	// it. RetentionZone is RETENTION_TIMEZONE, in which days, ISO weeks, months and years begin:
	// time.UTC when unset, never nil after Load.
	Retention     retention.Policy
	RetentionZone *time.Location
	// KnownHosts is SFTP_KNOWN_HOSTS: the known_hosts lines that pin the sftp:// servers' keys.
	KnownHosts string
	// StatusMaxShrink is STATUS_MAX_SHRINK as a fraction (0.5 for 50%): pgoffsite status fails a
	// target whose newest archive shrank more than this from the week's median.
	StatusMaxShrink float64
	// Drill is pgoffsite drill's DRILL_ variables.
	Drill Drill
	// Fork is BACKUP_METHOD=fork's FORK_ variables.
	Fork Fork

	// AgeIdentity is AGE_IDENTITY: the text of the identity that decrypts archives where they are
	// read back ("" when unset). Secret: never rendered (String, GoString, MarshalJSON).
	AgeIdentity string
	// AppName is HEROKU_APP_NAME, the app pgoffsite runs as (dyno metadata); "" when unset.
	AppName string
	// Child is a run on a dyno a coordinator started (ChildVar=1): it archives its one target
	// and leaves the heartbeat, the webhook and the fan-out to its coordinator.
	Child bool
	// GoMemLimitSet: GOMEMLIMIT is set, and the Go runtime's memory limit is its, not the run's.
	GoMemLimitSet bool
}

// ChildVar marks the environment of a dyno a coordinator started (Config.Child).
const ChildVar = "PGOFFSITE_CHILD"

// goMemLimitVar is the Go runtime's own memory limit.
const goMemLimitVar = "GOMEMLIMIT"

// Bucket is setup-bucket's lifecycle and Object Lock settings, as the BUCKET_* variables give them.
type Bucket struct {
	TransitionDays       int    // -1: never
	TransitionClass      string // GLACIER, GLACIER_IR or DEEP_ARCHIVE
	DeepArchiveDays      int    // 0: never
	ExpireDays           int    // 0: never
	NoncurrentExpireDays int
	ObjectLockDays       int    // 0: no default retention
	ObjectLockMode       string // "", GOVERNANCE or COMPLIANCE
}

const redacted = scrub.Mask

// String never shows the API key.
func (c Config) String() string {
	key := ""
	if c.HerokuAPIKey != "" {
		key = redacted
	}
	return fmt.Sprintf("Config{HerokuAPIKey:%s Targets:%v Archive:%s Mode:%s MaxAge:%s CaptureTimeout:%s Region:%s S3Endpoint:%s LogLevel:%s LogFormat:%s}",
		key, c.Targets, c.Archive, c.Mode, c.MaxAge, c.CaptureTimeout, c.Region, c.S3Endpoint, c.LogLevel, c.LogFormat)
}

// GoString never shows the API key either (%#v).
func (c Config) GoString() string { return c.String() }

// MarshalJSON never shows the API key or the identity either (a logger's Interface field marshals to JSON).
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without the methods, so that Marshal does not recurse
	p := plain(c)
	for _, s := range []*string{&p.HerokuAPIKey, &p.AgeIdentity} {
		if *s != "" {
			*s = redacted
		}
	}
	return json.Marshal(p)
}

// env is what envconfig reads. Durations, numbers and booleans are read as strings so that a bad
// value is reported together with every other problem instead of stopping at the first. Each
// field is a row of Describe, whose default readEnv gives it, or one of the undescribed (a test
// checks both ways).
type env struct {
	HerokuAPIKey      string `envconfig:"HEROKU_API_KEY"`
	Targets           string `envconfig:"BACKUP_TARGETS"`
	Exclude           string `envconfig:"BACKUP_EXCLUDE"`
	ArchiveURL        string `envconfig:"ARCHIVE_URL"`
	Mode              string `envconfig:"BACKUP_MODE"`
	Method            string `envconfig:"BACKUP_METHOD"`
	PgDumpPath        string `envconfig:"PG_DUMP_PATH"`
	PgDumpJobs        string `envconfig:"PG_DUMP_JOBS"`
	PgDumpExcludeData string `envconfig:"PG_DUMP_EXCLUDE_TABLE_DATA"`
	PgDumpExcludeNS   string `envconfig:"PG_DUMP_EXCLUDE_SCHEMA"`
	PgDumpCompress    string `envconfig:"PG_DUMP_COMPRESS"`
	MaxAge            string `envconfig:"BACKUP_MAX_AGE"`
	CaptureTimeout    string `envconfig:"BACKUP_CAPTURE_TIMEOUT"`
	Parallel          string `envconfig:"BACKUP_PARALLEL"`
	Fanout            string `envconfig:"BACKUP_FANOUT"`
	DynoSize          string `envconfig:"BACKUP_DYNO_SIZE"`
	StatusMaxShrink   string `envconfig:"STATUS_MAX_SHRINK"`
	Region            string `envconfig:"AWS_REGION"`
	DefaultRegion     string `envconfig:"AWS_DEFAULT_REGION"`
	S3ForcePathStyle  string `envconfig:"S3_FORCE_PATH_STYLE"`
	S3StorageClass    string `envconfig:"S3_STORAGE_CLASS"`
	S3SSE             string `envconfig:"S3_SSE"`
	S3SSEKMSKeyID     string `envconfig:"S3_SSE_KMS_KEY_ID"`
	HerokuAPIURL      string `envconfig:"HEROKU_API_URL"`
	HerokuDataAPIURL  string `envconfig:"HEROKU_DATA_API_URL"`
	LogLevel          string `envconfig:"LOG_LEVEL"`
	LogFormat         string `envconfig:"LOG_FORMAT"`
	HeartbeatURL      string `envconfig:"HEARTBEAT_URL"`
	WebhookURL        string `envconfig:"NOTIFY_WEBHOOK_URL"`
	NotifyOn          string `envconfig:"NOTIFY_ON"`
	Concurrency       string `envconfig:"ARCHIVE_CONCURRENCY"`
	PartSize          string `envconfig:"ARCHIVE_PART_SIZE"`
	MemoryLimit       string `envconfig:"ARCHIVE_MEMORY_LIMIT"`
	Check             string `envconfig:"ARCHIVE_CHECK"`
	SFTPPrivateKey    string `envconfig:"SFTP_PRIVATE_KEY"`
	SFTPKnownHosts    string `envconfig:"SFTP_KNOWN_HOSTS"`
	Recipients        string `envconfig:"ARCHIVE_RECIPIENTS"`
	AppBundle         string `envconfig:"BACKUP_APP_BUNDLE"`
	BundleSigningKey  string `envconfig:"BUNDLE_SIGNING_KEY"`
	BundleVerifyKey   string `envconfig:"BUNDLE_VERIFY_KEY"`
	BundleHeartbeat   string `envconfig:"BUNDLE_HEARTBEAT_URL"`
	VerifyHeartbeat   string `envconfig:"VERIFY_HEARTBEAT_URL"`
	StatusHeartbeat   string `envconfig:"STATUS_HEARTBEAT_URL"`
	DrillHeartbeat    string `envconfig:"DRILL_HEARTBEAT_URL"`
	AgeIdentity       string `envconfig:"AGE_IDENTITY"`
	AppName           string `envconfig:"HEROKU_APP_NAME"`
	Child             string `envconfig:"PGOFFSITE_CHILD"`
	GoMemLimit        string `envconfig:"GOMEMLIMIT"`
	Retention         string `envconfig:"RETENTION"`
	RetentionTimezone string `envconfig:"RETENTION_TIMEZONE"`

	// pgoffsite drill's settings: only drill reads them.
	DrillPlan    string `envconfig:"DRILL_PLAN"`
	DrillChecks  string `envconfig:"DRILL_CHECKS"`
	DrillTimeout string `envconfig:"DRILL_TIMEOUT"`

	// BACKUP_METHOD=fork's settings.
	ForkPlan    string `envconfig:"FORK_PLAN"`
	ForkTimeout string `envconfig:"FORK_TIMEOUT"`

	// setup-bucket's settings: only setup-bucket reads them.
	BucketTransitionDays       string `envconfig:"BUCKET_TRANSITION_DAYS"`
	BucketTransitionClass      string `envconfig:"BUCKET_TRANSITION_CLASS"`
	BucketDeepArchiveDays      string `envconfig:"BUCKET_DEEP_ARCHIVE_DAYS"`
	BucketExpireDays           string `envconfig:"BUCKET_EXPIRE_DAYS"`
	BucketNoncurrentExpireDays string `envconfig:"BUCKET_NONCURRENT_EXPIRE_DAYS"`
	BucketObjectLockDays       string `envconfig:"BUCKET_OBJECT_LOCK_DAYS"`
	BucketObjectLockMode       string `envconfig:"BUCKET_OBJECT_LOCK_MODE"`

	// The AWS SDK reads these itself; they are here only to be checked.
	AccessKeyID          string `envconfig:"AWS_ACCESS_KEY_ID"`
	SecretAccessKey      string `envconfig:"AWS_SECRET_ACCESS_KEY"`
	SessionToken         string `envconfig:"AWS_SESSION_TOKEN"`
	Profile              string `envconfig:"AWS_PROFILE"`
	WebIdentityTokenFile string `envconfig:"AWS_WEB_IDENTITY_TOKEN_FILE"`
	ContainerFullURI     string `envconfig:"AWS_CONTAINER_CREDENTIALS_FULL_URI"`
	ContainerRelativeURI string `envconfig:"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"`
	EndpointS3           string `envconfig:"AWS_ENDPOINT_URL_S3"`
	Endpoint             string `envconfig:"AWS_ENDPOINT_URL"`
}

// readEnv reads the process environment. A variable set to the empty string counts as unset
// (`heroku config:set X=` is easy to type), so it gets its default (Describe's) like an absent one.
func readEnv() (env, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		// Every field is a string: envconfig cannot fail on a value, only on a malformed struct.
		return env{}, fmt.Errorf("config: read the environment: %w", err)
	}
	defaults := map[string]string{}
	for _, d := range Describe() {
		defaults[d.Name] = d.Default
	}
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.String() == "" {
			f.SetString(defaults[v.Type().Field(i).Tag.Get("envconfig")])
		}
	}
	return e, nil
}
