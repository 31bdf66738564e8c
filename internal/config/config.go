// Package config turns the environment (Heroku config vars) into a Config, reporting every
// problem at once, each with the variable's name and the fix.
package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// Target is one database to archive.
type Target struct {
	App      string
	Database string // as the Heroku CLI accepts it; DATABASE_URL when not given
}

func (t Target) String() string { return t.App + ":" + t.Database }

// Archive is the destination named by ARCHIVE_URL.
type Archive struct {
	Scheme string // "s3" or "file"
	Bucket string // s3
	Prefix string // s3, without leading or trailing slash
	Dir    string // file, absolute
}

func (a Archive) String() string {
	switch a.Scheme {
	case "s3":
		if a.Prefix == "" {
			return "s3://" + a.Bucket
		}
		return "s3://" + a.Bucket + "/" + a.Prefix
	case "file":
		return "file://" + a.Dir
	}
	return ""
}

// Config is pgoffsite's configuration.
type Config struct {
	HerokuAPIKey     string
	Targets          []Target
	Archive          Archive
	Mode             string
	MaxAge           time.Duration
	CaptureTimeout   time.Duration
	Region           string
	S3Endpoint       string
	S3ForcePathStyle bool
	S3StorageClass   string
	S3SSE            string
	S3SSEKMSKeyID    string
	HerokuAPIURL     string
	HerokuDataAPIURL string
	LogLevel         string
	LogFormat        string
	HeartbeatURL     string
	WebhookURL       string
	NotifyOn         string
	// Streaming: ranges downloaded and parts uploaded in flight, their size, and the memory the
	// part buffers may take (concurrency is lowered to fit).
	Concurrency int
	PartSize    int64
	MemoryLimit int64
	// FullCheck checks the whole archive while it streams (every data block decompressed);
	// otherwise only its header is checked before the upload.
	FullCheck bool
}

// String never shows the API key.
func (c Config) String() string {
	return fmt.Sprintf("Config{Targets:%v Archive:%s Mode:%s}", c.Targets, c.Archive, c.Mode)
}

// GoString never shows the API key either (%#v).
func (c Config) GoString() string { return c.String() }

// env is what envconfig reads. Durations and booleans are read as strings so that a bad value is
// reported together with every other problem instead of stopping at the first.
type env struct {
	HerokuAPIKey     string `envconfig:"HEROKU_API_KEY"`
	Targets          string `envconfig:"BACKUP_TARGETS"`
	ArchiveURL       string `envconfig:"ARCHIVE_URL"`
	Mode             string `envconfig:"BACKUP_MODE" default:"capture"`
	MaxAge           string `envconfig:"BACKUP_MAX_AGE" default:"26h"`
	CaptureTimeout   string `envconfig:"BACKUP_CAPTURE_TIMEOUT" default:"6h"`
	Region           string `envconfig:"AWS_REGION"`
	DefaultRegion    string `envconfig:"AWS_DEFAULT_REGION"`
	S3ForcePathStyle string `envconfig:"S3_FORCE_PATH_STYLE" default:"false"`
	S3StorageClass   string `envconfig:"S3_STORAGE_CLASS" default:"STANDARD"`
	S3SSE            string `envconfig:"S3_SSE"`
	S3SSEKMSKeyID    string `envconfig:"S3_SSE_KMS_KEY_ID"`
	HerokuAPIURL     string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com"`
	HerokuDataAPIURL string `envconfig:"HEROKU_DATA_API_URL" default:"https://api.data.heroku.com"`
	LogLevel         string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat        string `envconfig:"LOG_FORMAT" default:"logfmt"`
	HeartbeatURL     string `envconfig:"HEARTBEAT_URL"`
	WebhookURL       string `envconfig:"NOTIFY_WEBHOOK_URL"`
	NotifyOn         string `envconfig:"NOTIFY_ON" default:"failure"`
	Concurrency      string `envconfig:"ARCHIVE_CONCURRENCY" default:"4"`
	PartSize         string `envconfig:"ARCHIVE_PART_SIZE" default:"8MiB"`
	MemoryLimit      string `envconfig:"ARCHIVE_MEMORY_LIMIT" default:"96MiB"`
	Check            string `envconfig:"ARCHIVE_CHECK" default:"full"`
}

// Problem is one configuration mistake.
type Problem struct {
	Var     string
	Message string
	Fix     string
}

func (p Problem) String() string {
	s := p.Var + ": " + p.Message
	if p.Fix != "" {
		s += " — " + p.Fix
	}
	return s
}

// Problems is every configuration mistake found; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads the process environment.
func Load() (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		// Only string fields: envconfig cannot fail on a value, only on a malformed struct.
		return Config{}, Problems{{Var: "environment", Message: err.Error()}}
	}
	c, ps := e.validate()
	if len(ps) > 0 {
		return Config{}, ps
	}
	return c, nil
}

var (
	appNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)
	dbNameRE    = regexp.MustCompile(`^(?:[a-z][a-z0-9-]{2,29}::)?[A-Za-z][A-Za-z0-9_-]*$`)
	bucketRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	targetSplit = regexp.MustCompile(`[\s,]+`)
)

var storageClasses = []string{"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY"}

// validate builds the Config and lists every problem; the Config is usable only where no
// problem concerns the variables the caller needs.
func (e env) validate() (Config, Problems) {
	var ps Problems
	add := func(v, msg, fix string) { ps = append(ps, Problem{Var: v, Message: msg, Fix: fix}) }
	c := Config{
		HerokuAPIKey:     strings.TrimSpace(e.HerokuAPIKey),
		Mode:             e.Mode,
		S3StorageClass:   strings.ToUpper(e.S3StorageClass),
		S3SSE:            e.S3SSE,
		S3SSEKMSKeyID:    e.S3SSEKMSKeyID,
		HerokuAPIURL:     strings.TrimRight(e.HerokuAPIURL, "/"),
		HerokuDataAPIURL: strings.TrimRight(e.HerokuDataAPIURL, "/"),
		LogLevel:         strings.ToLower(e.LogLevel),
		LogFormat:        strings.ToLower(e.LogFormat),
	}

	switch {
	case c.HerokuAPIKey == "":
		add("HEROKU_API_KEY", "not set", "create a long-lived key with `heroku authorizations:create` and set it with `heroku config:set HEROKU_API_KEY=...`")
	case strings.ContainsAny(c.HerokuAPIKey, " \t\r\n"):
		add("HEROKU_API_KEY", "contains whitespace", "paste only the token that `heroku authorizations:create` prints")
	}

	c.Targets = parseTargets(e.Targets, add)

	c.Archive = parseArchive(e.ArchiveURL, add)

	switch c.Mode {
	case "capture", "latest":
	default:
		add("BACKUP_MODE", fmt.Sprintf("%q is not a mode", clip(c.Mode)), "use capture (a new backup each run) or latest (the newest backup Heroku already has)")
	}
	c.MaxAge = parseDuration("BACKUP_MAX_AGE", e.MaxAge, add)
	c.CaptureTimeout = parseDuration("BACKUP_CAPTURE_TIMEOUT", e.CaptureTimeout, add)

	c.HerokuAPIURL = checkHTTPURL("HEROKU_API_URL", c.HerokuAPIURL, add)
	c.HerokuDataAPIURL = checkHTTPURL("HEROKU_DATA_API_URL", c.HerokuDataAPIURL, add)

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL", fmt.Sprintf("%q is not a level", clip(e.LogLevel)), "use debug, info, warn or error")
	}
	switch c.LogFormat {
	case "logfmt", "json":
	default:
		add("LOG_FORMAT", fmt.Sprintf("%q is not a format", clip(e.LogFormat)), "use logfmt (what Heroku's log viewer reads) or json")
	}

	if e.HeartbeatURL != "" {
		c.HeartbeatURL = checkHTTPURL("HEARTBEAT_URL", e.HeartbeatURL, add)
	}
	if e.WebhookURL != "" {
		c.WebhookURL = checkHTTPURL("NOTIFY_WEBHOOK_URL", e.WebhookURL, add)
	}
	c.NotifyOn = strings.ToLower(e.NotifyOn)
	if c.NotifyOn != "failure" && c.NotifyOn != "always" {
		add("NOTIFY_ON", fmt.Sprintf("%q is not a choice", clip(e.NotifyOn)), "use failure (the default) or always")
	}

	c.checkStreaming(e, add)
	switch strings.ToLower(e.Check) {
	case "full":
		c.FullCheck = true
	case "header":
	default:
		add("ARCHIVE_CHECK", fmt.Sprintf("%q is not a check", clip(e.Check)), "use full (every data block decompressed while streaming, the default) or header (faster than one core can inflate)")
	}
	if c.Archive.Scheme == "s3" {
		c.checkS3(e, add)
	}
	return c, ps
}

func (c *Config) checkS3(e env, add func(v, msg, fix string)) {
	c.Region = e.Region
	if c.Region == "" {
		c.Region = e.DefaultRegion
	}
	if c.Region == "" {
		add("AWS_REGION", "not set, and the archive is in S3", "set it to the bucket's region, e.g. `heroku config:set AWS_REGION=eu-west-1`")
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID") != "", os.Getenv("AWS_SECRET_ACCESS_KEY") != ""
	switch {
	case id && !secret:
		add("AWS_SECRET_ACCESS_KEY", "not set, but AWS_ACCESS_KEY_ID is", "set both keys of the uploader's access key pair")
	case secret && !id:
		add("AWS_ACCESS_KEY_ID", "not set, but AWS_SECRET_ACCESS_KEY is", "set both keys of the uploader's access key pair")
	case !id && !secret && os.Getenv("AWS_PROFILE") == "" && os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") == "" &&
		os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") == "" && os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") == "":
		add("AWS_ACCESS_KEY_ID", "no AWS credentials in the environment", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the uploader (see `pgoffsite policy` for its least-privilege policy)")
	}
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if raw := os.Getenv(v); raw != "" {
			if u := checkHTTPURL(v, raw, add); u != "" && c.S3Endpoint == "" {
				c.S3Endpoint = u
			}
		}
	}
	b, err := strconv.ParseBool(e.S3ForcePathStyle)
	if err != nil {
		add("S3_FORCE_PATH_STYLE", fmt.Sprintf("%q is not a boolean", clip(e.S3ForcePathStyle)), "use true or false")
	}
	c.S3ForcePathStyle = b
	valid := false
	for _, sc := range storageClasses {
		valid = valid || c.S3StorageClass == sc
	}
	if !valid {
		add("S3_STORAGE_CLASS", fmt.Sprintf("%q is not an S3 storage class", clip(e.S3StorageClass)), "use one of "+strings.Join(storageClasses, ", "))
	}
	switch c.S3SSE {
	case "", "AES256":
		if c.S3SSEKMSKeyID != "" {
			add("S3_SSE_KMS_KEY_ID", "set, but S3_SSE is not aws:kms", "set S3_SSE=aws:kms to use the key, or unset S3_SSE_KMS_KEY_ID")
		}
	case "aws:kms":
	default:
		add("S3_SSE", fmt.Sprintf("%q is not an encryption mode", clip(c.S3SSE)), "use AES256 (S3-managed keys) or aws:kms (with S3_SSE_KMS_KEY_ID), or leave it empty for the bucket's default")
	}
}

const mib = 1 << 20

func (c *Config) checkStreaming(e env, add func(v, msg, fix string)) {
	n, err := strconv.Atoi(strings.TrimSpace(e.Concurrency))
	if err != nil || n < 1 || n > 64 {
		add("ARCHIVE_CONCURRENCY", fmt.Sprintf("%q is not a number from 1 to 64", clip(e.Concurrency)), "use e.g. 4 (the default); more helps on fast links, each adds two part buffers of memory")
	}
	c.Concurrency = n
	c.PartSize = parseSize("ARCHIVE_PART_SIZE", e.PartSize, add)
	if c.PartSize != 0 && (c.PartSize < 5*mib || c.PartSize > 5<<30) {
		add("ARCHIVE_PART_SIZE", fmt.Sprintf("%q is outside S3's part sizes", clip(e.PartSize)), "use 5MiB to 5GiB, e.g. 8MiB (the default) or 64MiB")
	}
	c.MemoryLimit = parseSize("ARCHIVE_MEMORY_LIMIT", e.MemoryLimit, add)
	if c.PartSize >= 5*mib && c.MemoryLimit != 0 && c.MemoryLimit < 4*c.PartSize {
		add("ARCHIVE_MEMORY_LIMIT", fmt.Sprintf("%q holds fewer than four parts of %s", clip(e.MemoryLimit), e.PartSize), "raise it, or lower ARCHIVE_PART_SIZE")
	}
	// Each unit of concurrency holds a download range and an upload part; one more of each is being filled.
	for c.Concurrency > 1 && int64(2*c.Concurrency+2)*c.PartSize > c.MemoryLimit {
		c.Concurrency--
	}
}

// parseSize reads a byte size such as 8MiB, 64MB, 1GiB or 1048576.
func parseSize(v, raw string, add func(v, msg, fix string)) int64 {
	s := strings.TrimSpace(raw)
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		add(v, fmt.Sprintf("%q is not a size", clip(raw)), "write it like 8MiB, 64MiB or 1GiB")
		return 0
	}
	return n * mult
}

func parseTargets(raw string, add func(v, msg, fix string)) []Target {
	const v = "BACKUP_TARGETS"
	fields := targetSplit.Split(strings.TrimSpace(raw), -1)
	if strings.TrimSpace(raw) == "" {
		add(v, "not set", `list the apps to back up, e.g. "shop-prod shop-staging:HEROKU_POSTGRESQL_PINK"`)
		return nil
	}
	seen := map[string]bool{}
	var targets []Target
	for _, f := range fields {
		app, db, hasDB := strings.Cut(f, ":")
		if !hasDB {
			db = "DATABASE_URL"
		}
		ok := true
		if !appNameRE.MatchString(app) {
			add(v, fmt.Sprintf("%q is not a valid Heroku app name", clip(app)), "use the app's name as `heroku apps` shows it (lowercase letters, digits and dashes)")
			ok = false
		}
		switch {
		case hasDB && db == "":
			add(v, fmt.Sprintf("%q names no database after the colon", clip(f)), "write app:DATABASE, e.g. shop:HEROKU_POSTGRESQL_PINK, or just the app for DATABASE_URL")
			ok = false
		case !dbNameRE.MatchString(db):
			add(v, fmt.Sprintf("%q is not a database name", clip(db)), "use a name the Heroku CLI accepts: DATABASE_URL, HEROKU_POSTGRESQL_PINK, postgresql-globular-83867 or other-app::DATABASE_URL")
			ok = false
		}
		if !ok {
			continue
		}
		t := Target{App: app, Database: db}
		key := app + ":" + canonicalDB(db)
		if seen[key] {
			add(v, fmt.Sprintf("%s is listed twice", t), "list each database once")
			continue
		}
		seen[key] = true
		targets = append(targets, t)
	}
	return targets
}

// canonicalDB makes DATABASE and DATABASE_URL the same name, for duplicate detection.
func canonicalDB(db string) string {
	return strings.TrimSuffix(strings.ToUpper(db), "_URL")
}

func parseArchive(raw string, add func(v, msg, fix string)) Archive {
	const v = "ARCHIVE_URL"
	const fix = "use s3://bucket/optional/prefix, or file:///absolute/directory"
	if raw == "" {
		add(v, "not set", fix)
		return Archive{}
	}
	u, err := url.Parse(raw)
	if err != nil {
		add(v, fmt.Sprintf("%q is not a URL", clip(raw)), fix)
		return Archive{}
	}
	switch u.Scheme {
	case "s3":
		if !bucketRE.MatchString(u.Host) || strings.Contains(u.Host, "..") {
			add(v, fmt.Sprintf("%q is not a valid S3 bucket name", clip(u.Host)), "bucket names are 3-63 lowercase letters, digits, dots and dashes")
			return Archive{}
		}
		if u.RawQuery != "" || u.User != nil {
			add(v, "has a query string or credentials", "put only the bucket and prefix in it; credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
			return Archive{}
		}
		return Archive{Scheme: "s3", Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			add(v, fmt.Sprintf("%q is not an absolute directory", clip(raw)), "write file:///absolute/dir (three slashes)")
			return Archive{}
		}
		return Archive{Scheme: "file", Dir: u.Path}
	}
	add(v, fmt.Sprintf("%q is neither s3:// nor file://", clip(raw)), fix)
	return Archive{}
}

func parseDuration(v, raw string, add func(v, msg, fix string)) time.Duration {
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		add(v, fmt.Sprintf("%q is not a duration", clip(raw)), "write it like 26h, 90m or 1h30m")
	case d <= 0:
		add(v, fmt.Sprintf("%q is not positive", clip(raw)), "write a positive duration like 26h")
	}
	return d
}

// checkHTTPURL accepts https URLs, and http only towards loopback (a local simulator or store).
func checkHTTPURL(v, raw string, add func(v, msg, fix string)) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add(v, fmt.Sprintf("%q is not an absolute http(s) URL", clip(raw)), "write it like https://host, or unset it for the default")
		return ""
	}
	if u.Scheme == "http" && !netguard.IsLoopback(u.Hostname()) {
		add(v, fmt.Sprintf("%q uses plain http", clip(raw)), "use https: credentials must not cross the network in the clear (plain http is allowed only on loopback)")
		return ""
	}
	return strings.TrimRight(raw, "/")
}

// clip shortens a quoted value so a pasted blob does not flood the message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// LoadArchive reads only what the bucket commands need — ARCHIVE_URL (s3://), the AWS and S3
// variables and the log settings — so that they run before the Heroku side is configured.
func LoadArchive() (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, Problems{{Var: "environment", Message: err.Error()}}
	}
	c, ps := e.validate()
	var keep Problems
	for _, p := range ps {
		if p.Var == "ARCHIVE_URL" || strings.HasPrefix(p.Var, "AWS_") || strings.HasPrefix(p.Var, "S3_") || strings.HasPrefix(p.Var, "LOG_") {
			keep = append(keep, p)
		}
	}
	if e.ArchiveURL != "" && c.Archive.Scheme != "s3" && len(keep) == 0 {
		keep = append(keep, Problem{Var: "ARCHIVE_URL", Message: "is not an s3:// URL", Fix: "the bucket commands work on S3 archives: set ARCHIVE_URL=s3://bucket/prefix"})
	}
	if len(keep) > 0 {
		return Config{}, keep
	}
	return c, nil
}

// ArchiveFromEnv reads ARCHIVE_URL alone, for commands that only need to know where archives go.
func ArchiveFromEnv() (Archive, error) {
	var ps Problems
	a := parseArchive(os.Getenv("ARCHIVE_URL"), func(v, msg, fix string) { ps = append(ps, Problem{Var: v, Message: msg, Fix: fix}) })
	if len(ps) > 0 {
		return Archive{}, ps
	}
	return a, nil
}

// LoadExcept reads the environment like Load, ignoring problems of the variables a command does
// not use (verify needs no Heroku API key).
func LoadExcept(unused ...string) (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, Problems{{Var: "environment", Message: err.Error()}}
	}
	c, ps := e.validate()
	var keep Problems
	for _, p := range ps {
		if !slices.Contains(unused, p.Var) {
			keep = append(keep, p)
		}
	}
	if len(keep) > 0 {
		return Config{}, keep
	}
	return c, nil
}
