// Package config turns the environment (Heroku config vars) into a Config, reporting every
// problem at once, each with the variable's name and the fix.
package config

import (
	"encoding/json"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Target is one database to archive: a Heroku app's database, or (Env) a Postgres URL in
// pgoffsite's own environment, named by its variable in Database (App is then "env").
type Target struct {
	App      string
	Database string // as the Heroku CLI accepts it; DATABASE_URL when not given
	Env      bool   // BACKUP_TARGETS named env:VAR
}

func (t Target) String() string {
	if t.Env {
		return "env:" + t.Database
	}
	return t.App + ":" + t.Database
}

// Backup methods of Heroku targets (BACKUP_METHOD).
const (
	MethodPGBackups = "pgbackups" // Heroku's own backups (capture or latest)
	MethodPgDump    = "pg_dump"   // run pg_dump against the database's URL
)

// Archive is one destination named by ARCHIVE_URL (which may name several, separated by spaces).
type Archive struct {
	Scheme string // "s3", "file" or "sftp"
	Bucket string // s3
	Prefix string // s3, without leading, trailing or doubled slashes
	Dir    string // file: absolute and clean; sftp: the absolute directory on the server

	// s3 query parameters, for a provider other than AWS; empty (nil) means the global setting
	// (AWS_ENDPOINT_URL_S3, AWS_REGION, S3_FORCE_PATH_STYLE, S3_STORAGE_CLASS, S3_SSE).
	Endpoint     string // endpoint=https://s3.eu-central-003.backblazeb2.com
	Region       string // region=
	PathStyle    *bool  // path_style=true
	StorageClass string // storage_class=
	SSE          string // sse=
	// Keys names the pair of variables holding this destination's credentials (keys=B2 reads
	// B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY); empty means the default AWS chain.
	Keys string
	// The cli resolves the empty ones against Config's global settings (Region, S3Endpoint,
	// S3ForcePathStyle, S3StorageClass, S3SSE; S3SSEKMSKeyID is the key of every aws:kms one):
	// config leaves them empty so that a destination says only what ARCHIVE_URL gave it.

	// sftp
	User   string
	Host   string
	Port   int    // 22 when the URL gives none
	KeyVar string // the variable holding the private key: SFTP_PRIVATE_KEY, or key=NAME
}

// String names the destination for people and logs; it holds no secret (credentials never go
// in ARCHIVE_URL, only the names of the variables that hold them).
func (a Archive) String() string {
	switch a.Scheme {
	case "s3":
		s := "s3://" + a.Bucket
		if a.Prefix != "" {
			s += "/" + a.Prefix
		}
		return s
	case "file":
		return "file://" + a.Dir
	case "sftp":
		host := a.Host
		if a.Port != 0 && a.Port != 22 {
			host = fmt.Sprintf("%s:%d", a.Host, a.Port)
		}
		return "sftp://" + a.User + "@" + host + a.Dir
	}
	return ""
}

// Config is pgoffsite's configuration.
type Config struct {
	HerokuAPIKey string // never rendered: see String, GoString and MarshalJSON
	Targets      []Target
	// Archives are the destinations ARCHIVE_URL names, in its order; every backup is written to
	// all of them. Archive is the one the single-destination commands (verify, restore,
	// setup-bucket, policy) work on: the first, or the one --destination picks.
	Archives         []Archive
	Archive          Archive
	Mode             string // "capture" or "latest"
	Method           string // MethodPGBackups or MethodPgDump, for Heroku targets
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
}

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

// MarshalJSON never shows the API key either (a logger's Interface field marshals to JSON).
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without the methods, so that Marshal does not recurse
	p := plain(c)
	if p.HerokuAPIKey != "" {
		p.HerokuAPIKey = redacted
	}
	return json.Marshal(p)
}

// env is what envconfig reads. Durations, numbers and booleans are read as strings so that a bad
// value is reported together with every other problem instead of stopping at the first. The
// defaults are Describe's (a test checks they agree).
type env struct {
	HerokuAPIKey      string `envconfig:"HEROKU_API_KEY"`
	Targets           string `envconfig:"BACKUP_TARGETS"`
	ArchiveURL        string `envconfig:"ARCHIVE_URL"`
	Mode              string `envconfig:"BACKUP_MODE" default:"capture"`
	Method            string `envconfig:"BACKUP_METHOD" default:"pgbackups"`
	PgDumpPath        string `envconfig:"PG_DUMP_PATH"`
	MaxAge            string `envconfig:"BACKUP_MAX_AGE" default:"26h"`
	CaptureTimeout    string `envconfig:"BACKUP_CAPTURE_TIMEOUT" default:"6h"`
	Parallel          string `envconfig:"BACKUP_PARALLEL" default:"1"`
	Fanout            string `envconfig:"BACKUP_FANOUT" default:"0"`
	DynoSize          string `envconfig:"BACKUP_DYNO_SIZE" default:"standard-1X"`
	StatusMaxShrink   string `envconfig:"STATUS_MAX_SHRINK" default:"50%"`
	Region            string `envconfig:"AWS_REGION"`
	DefaultRegion     string `envconfig:"AWS_DEFAULT_REGION"`
	S3ForcePathStyle  string `envconfig:"S3_FORCE_PATH_STYLE" default:"false"`
	S3StorageClass    string `envconfig:"S3_STORAGE_CLASS" default:"STANDARD"`
	S3SSE             string `envconfig:"S3_SSE"`
	S3SSEKMSKeyID     string `envconfig:"S3_SSE_KMS_KEY_ID"`
	HerokuAPIURL      string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com"`
	HerokuDataAPIURL  string `envconfig:"HEROKU_DATA_API_URL" default:"https://api.data.heroku.com"`
	LogLevel          string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat         string `envconfig:"LOG_FORMAT" default:"logfmt"`
	HeartbeatURL      string `envconfig:"HEARTBEAT_URL"`
	WebhookURL        string `envconfig:"NOTIFY_WEBHOOK_URL"`
	NotifyOn          string `envconfig:"NOTIFY_ON" default:"failure"`
	Concurrency       string `envconfig:"ARCHIVE_CONCURRENCY" default:"16"`
	PartSize          string `envconfig:"ARCHIVE_PART_SIZE" default:"8MiB"`
	MemoryLimit       string `envconfig:"ARCHIVE_MEMORY_LIMIT" default:"96MiB"`
	Check             string `envconfig:"ARCHIVE_CHECK" default:"auto"`
	SFTPPrivateKey    string `envconfig:"SFTP_PRIVATE_KEY"`
	SFTPKnownHosts    string `envconfig:"SFTP_KNOWN_HOSTS"`
	Recipients        string `envconfig:"ARCHIVE_RECIPIENTS"`
	AppBundle         string `envconfig:"BACKUP_APP_BUNDLE" default:"false"`
	BundleSigningKey  string `envconfig:"BUNDLE_SIGNING_KEY"`
	BundleVerifyKey   string `envconfig:"BUNDLE_VERIFY_KEY"`
	BundleHeartbeat   string `envconfig:"BUNDLE_HEARTBEAT_URL"`
	AgeIdentity       string `envconfig:"AGE_IDENTITY"`
	Retention         string `envconfig:"RETENTION"`
	RetentionTimezone string `envconfig:"RETENTION_TIMEZONE" default:"UTC"`

	// pgoffsite drill's settings; only LoadDrill reports their problems.
	DrillPlan    string `envconfig:"DRILL_PLAN" default:"heroku-postgresql:essential-0"`
	DrillChecks  string `envconfig:"DRILL_CHECKS"`
	DrillTimeout string `envconfig:"DRILL_TIMEOUT" default:"2h"`

	// setup-bucket's settings; only LoadArchive reports their problems.
	BucketTransitionDays       string `envconfig:"BUCKET_TRANSITION_DAYS" default:"30"`
	BucketTransitionClass      string `envconfig:"BUCKET_TRANSITION_CLASS" default:"GLACIER"`
	BucketDeepArchiveDays      string `envconfig:"BUCKET_DEEP_ARCHIVE_DAYS" default:"0"`
	BucketExpireDays           string `envconfig:"BUCKET_EXPIRE_DAYS" default:"400"`
	BucketNoncurrentExpireDays string `envconfig:"BUCKET_NONCURRENT_EXPIRE_DAYS" default:"30"`
	BucketObjectLockDays       string `envconfig:"BUCKET_OBJECT_LOCK_DAYS" default:"0"`
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
// (`heroku config:set X=` is easy to type), so it gets its default like an absent one.
func readEnv() (env, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		// Every field is a string: envconfig cannot fail on a value, only on a malformed struct.
		return env{}, fmt.Errorf("config: read the environment: %w", err)
	}
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.String() == "" {
			f.SetString(v.Type().Field(i).Tag.Get("default"))
		}
	}
	return e, nil
}

// Load reads the process environment for the commands that back up (backup, check); the error
// is Problems, listing every mistake, when there is any. An age identity in that environment is
// one: the dyno that uploads must not be able to decrypt.
func Load(opts ...Option) (Config, error) {
	return load(func(p Problem) bool { return !isBucketVar(p.Var) && !isDrillVar(p.Var) }, opts...)
}

// Option is a command-line value that takes a variable's place in one load, read and checked
// as that variable would be: the process environment itself is never changed.
type Option func(*env)

// WithTargets is `backup --target APP:DATABASE`: that one target instead of BACKUP_TARGETS.
func WithTargets(targets string) Option {
	return func(e *env) {
		if targets != "" {
			e.Targets = targets
		}
	}
}

// LoadExcept reads the environment for the commands that read archives back (verify, restore),
// ignoring problems of the variables a command does not use (verify needs no Heroku API key).
// AGE_IDENTITY is theirs to use, and a private key that opens the archives is no problem there.
func LoadExcept(unused ...string) (Config, error) {
	return load(func(p Problem) bool {
		return !slices.Contains(unused, p.Var) && !isBucketVar(p.Var) && !isDrillVar(p.Var) && !p.decrypts
	})
}

// isBucketVar tells setup-bucket's variables, which no other command reads.
func isBucketVar(name string) bool { return strings.HasPrefix(name, "BUCKET_") }

// LoadArchive reads only what setup-bucket needs — ARCHIVE_URL (s3://), the AWS, S3 and BUCKET_
// variables and the log settings — so that it runs before the Heroku side is configured. Its
// Archive is ARCHIVE_URL's first s3:// destination.
func LoadArchive() (Config, error) {
	c, err := load(func(p Problem) bool {
		return p.Var == "ARCHIVE_URL" || p.Var == retention.Var || p.Var == retention.ZoneVar || strings.HasPrefix(p.Var, "AWS_") || strings.HasPrefix(p.Var, "S3_") || strings.HasPrefix(p.Var, "LOG_") ||
			isBucketVar(p.Var)
	})
	if err != nil {
		return c, err
	}
	// Archive is the first S3 destination: the bucket commands have nothing to do with the others.
	for _, a := range c.Archives {
		if a.Scheme == "s3" {
			c.Archive = a
			return c, nil
		}
	}
	msg := "is not an s3:// URL"
	if len(c.Archives) > 1 {
		msg = "names no s3:// destination"
	}
	return Config{}, Problems{{Var: "ARCHIVE_URL", Message: msg,
		Fix: "the bucket commands work on S3 archives: set ARCHIVE_URL=s3://bucket/prefix"}}
}

// ArchiveFromEnv reads ARCHIVE_URL alone, for commands that only need to know where archives
// go: its first destination.
func ArchiveFromEnv() (Archive, error) {
	as, err := ArchivesFromEnv()
	if err != nil {
		return Archive{}, err
	}
	return as[0], nil
}

// ArchivesFromEnv reads ARCHIVE_URL alone: every destination, in its order. The variables the
// destinations name (keys=, key=) are not read.
func ArchivesFromEnv() ([]Archive, error) {
	e, err := readEnv()
	if err != nil {
		return nil, err
	}
	ck := newChecker(e)
	as := ck.archives(strings.TrimSpace(e.ArchiveURL))
	if len(ck.ps) > 0 {
		return nil, ck.ps
	}
	return as, nil
}

func load(keep func(Problem) bool, opts ...Option) (Config, error) {
	e, err := readEnv()
	if err != nil {
		return Config{}, err
	}
	for _, o := range opts {
		o(&e)
	}
	c, ps := e.validate()
	var kept Problems
	for _, p := range ps {
		if keep(p) {
			kept = append(kept, p)
		}
	}
	if len(kept) > 0 {
		return Config{}, kept
	}
	return c, nil
}
