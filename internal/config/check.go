package config

import (
	"errors"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

var (
	// Heroku app names: lowercase letters, digits and dashes, starting with a letter, 3-30 long.
	appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)
	// What the Heroku CLI accepts after app: — a config var or attachment (DATABASE_URL, DATABASE,
	// HEROKU_POSTGRESQL_PINK[_URL]), an add-on name (postgresql-globular-83867), either of them
	// behind another app's name (other-app::DATABASE_URL).
	dbNameRE = regexp.MustCompile(`^(?:[a-z][a-z0-9-]{2,29}::)?[A-Za-z][A-Za-z0-9_-]*$`)
)

var storageClasses = []string{"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY"}

// validate builds the Config and lists every problem; the Config is usable only where no
// problem concerns the variables the caller needs.
func (e env) validate() (Config, Problems) {
	ck := newChecker(e)
	// The AWS SDK reads its variables untrimmed, so stray spaces would break it later, far from here.
	for _, v := range []struct{ name, value string }{{"AWS_ACCESS_KEY_ID", e.AccessKeyID}, {"AWS_SECRET_ACCESS_KEY", e.SecretAccessKey},
		{"AWS_ENDPOINT_URL_S3", e.EndpointS3}, {"AWS_ENDPOINT_URL", e.Endpoint}} {
		if v.value != strings.TrimSpace(v.value) {
			ck.add(v.name, "has spaces or line breaks around it", "set it again with only the value")
		}
	}
	e = e.trimmed()

	c := Config{
		HerokuAPIKey:  e.HerokuAPIKey,
		Mode:          strings.ToLower(e.Mode),
		LogLevel:      strings.ToLower(e.LogLevel),
		LogFormat:     strings.ToLower(e.LogFormat),
		NotifyOn:      strings.ToLower(e.NotifyOn),
		S3SSEKMSKeyID: e.S3SSEKMSKeyID,
	}
	c.Targets, c.AllTargets = ck.targets(e.Targets)
	c.Exclude = ck.exclude(e.Exclude, c.AllTargets)
	if herokuListed(e.Targets) {
		ck.apiKey(e.HerokuAPIKey)
	}
	c.Method = strings.ToLower(e.Method)
	if c.Method != MethodPGBackups && c.Method != MethodPgDump && c.Method != MethodFork {
		ck.add("BACKUP_METHOD", ck.q(e.Method)+" is not a method", "use pgbackups (Heroku's own backups), pg_dump (run pg_dump against the database) or fork (pg_dump a fork of it made for the dump)")
	}
	if c.PgDumpPath = e.PgDumpPath; c.PgDumpPath != "" {
		if fi, err := os.Stat(c.PgDumpPath); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			ck.add("PG_DUMP_PATH", ck.q(c.PgDumpPath)+" is not an executable file", "point it at pg_dump, e.g. /usr/lib/postgresql/17/bin/pg_dump, or unset it to use pg_dump on PATH")
		}
	}
	c.Archives = ck.archives(e.ArchiveURL)
	if len(c.Archives) > 0 {
		c.Archive = c.Archives[0]
	}
	ck.destinationEnv(e, c.Archives)
	ck.localDisk(e.ArchiveURL, c.Archives)
	c.Recipients = recipientItems(e.Recipients)
	if ab, err := strconv.ParseBool(e.AppBundle); err != nil {
		ck.add("BACKUP_APP_BUNDLE", ck.q(e.AppBundle)+" is not a boolean", "use true or false")
	} else {
		c.AppBundle = ab
	}
	c.KnownHosts = e.SFTPKnownHosts
	ck.checkRecipients(c.Recipients)
	ck.bundleVars(e, &c)
	if e.AgeIdentity != "" {
		// A problem where archives are written (backup, check), not where they are read back.
		ck.addDecrypts(identityVar, "is set where backups run: whoever reads this environment could decrypt every archive",
			"unset it (heroku config:unset AGE_IDENTITY), keep the identity offline, and give it only to verify or restore where they run (--identity FILE, or heroku run -x --env AGE_IDENTITY=... pgoffsite verify; -x passes its exit status on)")
	}

	if c.Mode != "capture" && c.Mode != "latest" {
		ck.add("BACKUP_MODE", ck.q(e.Mode)+" is not a mode", "use capture (a new backup each run) or latest (the newest backup Heroku already has)")
	}
	c.MaxAge = ck.duration("BACKUP_MAX_AGE", e.MaxAge)
	c.CaptureTimeout = ck.duration("BACKUP_CAPTURE_TIMEOUT", e.CaptureTimeout)
	c.StatusMaxShrink = ck.percent("STATUS_MAX_SHRINK", e.StatusMaxShrink)

	c.HerokuAPIURL = ck.httpURL("HEROKU_API_URL", e.HerokuAPIURL)
	c.HerokuDataAPIURL = ck.httpURL("HEROKU_DATA_API_URL", e.HerokuDataAPIURL)

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		ck.add("LOG_LEVEL", ck.q(e.LogLevel)+" is not a level", "use debug, info, warn or error")
	}
	if c.LogFormat != "logfmt" && c.LogFormat != "json" {
		ck.add("LOG_FORMAT", ck.q(e.LogFormat)+" is not a format", "use logfmt (what Heroku's log viewer reads) or json")
	}

	ck.heartbeatVars(e, &c)
	if e.WebhookURL != "" {
		c.WebhookURL = ck.httpURL("NOTIFY_WEBHOOK_URL", e.WebhookURL)
	}
	if c.NotifyOn != "failure" && c.NotifyOn != "always" {
		ck.add("NOTIFY_ON", ck.q(e.NotifyOn)+" is not a choice", "use failure (the default) or always")
	}

	ck.runners(e, &c)
	ck.streaming(e, &c)
	c.Bucket = ck.bucket(e)
	switch c.Check = strings.ToLower(e.Check); c.Check {
	case "auto", "full", "header":
	default:
		ck.add("ARCHIVE_CHECK", ck.q(e.Check)+" is not a check", "use auto (the default: an archive under 64 MiB decompressed whole, a bigger one while that keeps up with the download and its framing checked beyond), full (every data block decompressed, at the cost of speed on fast links) or header")
	}
	ck.retention(e, &c)
	c.Drill = ck.drill(e)
	ck.fork(e, &c)
	c.AgeIdentity, c.AppName = e.AgeIdentity, e.AppName
	c.Child = e.Child == "1"
	c.GoMemLimitSet = e.GoMemLimit != ""
	// Decided on what the kinds read even of a destination with problems, so that a bad bucket
	// name does not hide the other S3 problems.
	if read := globalVars(c.Archives); slices.ContainsFunc(s3Vars, func(v string) bool { return read[v] }) {
		ck.s3(e, &c, read)
	}
	// In the order docs/configuration.md and app.json list the variables.
	order := map[string]int{}
	for i, d := range Describe() {
		order[d.Name] = i
	}
	slices.SortStableFunc(ck.ps, func(a, b Problem) int { return order[a.Var] - order[b.Var] })
	return c, ck.ps
}

// newChecker knows every secret of the environment before the first problem is added: the keys,
// and the values of the variables ARCHIVE_URL names.
func newChecker(e env) *checker {
	ck := &checker{}
	ck.envSecrets(e)
	return ck
}

// trimmed drops the spaces and line breaks a copy and paste brings along.
func (e env) trimmed() env {
	for _, p := range []*string{&e.HerokuAPIKey, &e.Targets, &e.Exclude, &e.ArchiveURL, &e.Mode, &e.MaxAge, &e.CaptureTimeout, &e.StatusMaxShrink,
		&e.Region, &e.DefaultRegion, &e.S3ForcePathStyle, &e.S3StorageClass, &e.S3SSE, &e.S3SSEKMSKeyID,
		&e.HerokuAPIURL, &e.HerokuDataAPIURL, &e.LogLevel, &e.LogFormat, &e.HeartbeatURL, &e.WebhookURL,
		&e.NotifyOn, &e.Concurrency, &e.PartSize, &e.Parallel, &e.Fanout, &e.DynoSize, &e.MemoryLimit, &e.Check,
		&e.BucketTransitionDays, &e.BucketTransitionClass, &e.BucketDeepArchiveDays, &e.BucketExpireDays,
		&e.BucketNoncurrentExpireDays, &e.BucketObjectLockDays, &e.BucketObjectLockMode, &e.SFTPKnownHosts, &e.Recipients, &e.AgeIdentity,
		&e.Retention, &e.RetentionTimezone, &e.BundleSigningKey, &e.BundleVerifyKey, &e.BundleHeartbeat, &e.VerifyHeartbeat, &e.StatusHeartbeat, &e.DrillHeartbeat,
		&e.AppName, &e.Child, &e.ForkPlan, &e.ForkTimeout} {
		*p = strings.TrimSpace(*p)
	}
	return e
}

func (ck *checker) apiKey(key string) {
	const v = "HEROKU_API_KEY"
	if key == "" {
		ck.add(v, "not set", "create a long-lived key with `heroku authorizations:create` and set it with `heroku config:set HEROKU_API_KEY=...`")
		return
	}
	// It goes into an Authorization header: only printable ASCII without spaces can.
	for _, r := range key {
		if r <= ' ' || r > '~' {
			ck.add(v, "contains spaces or characters an API key never has", "paste only the token that `heroku authorizations:create` prints, without \"Bearer\" or quotes")
			return
		}
	}
}

// targets reads BACKUP_TARGETS: its databases, and whether it says all (AllTargets).
func (ck *checker) targets(raw string) (targets []Target, all bool) {
	const v = "BACKUP_TARGETS"
	fields := envlist.Split(raw)
	if len(fields) == 0 {
		ck.add(v, "lists no database", `list the apps to back up, e.g. "shop-prod shop-staging:HEROKU_POSTGRESQL_PINK", or all`)
		return nil, false
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if ck.url(v, f) {
			continue
		}
		if f == AllTargets {
			all = true
			continue
		}
		if name, ok := strings.CutPrefix(f, "env:"); ok {
			if t, ok := ck.envTarget(name); ok {
				if seen[f] {
					ck.add(v, f+" is listed twice", "list each database once")
					continue
				}
				seen[f] = true
				targets = append(targets, t)
			}
			continue
		}
		t, ok := ck.herokuTarget(v, f)
		if !ok {
			continue
		}
		key := t.App + ":" + canonicalDB(t.App, t.Database)
		if seen[key] {
			ck.add(v, t.String()+" is listed twice", "list each database once (DATABASE and DATABASE_URL are the same)")
			continue
		}
		seen[key] = true
		targets = append(targets, t)
	}
	if all && slices.ContainsFunc(targets, func(t Target) bool { return !t.Env }) {
		ck.add(v, "says all and names Heroku databases too", "all is every Heroku Postgres database the key can see: list only env:VAR targets beside it, and leave databases out with BACKUP_EXCLUDE")
	}
	return targets, all
}

// exclude reads BACKUP_EXCLUDE, the Heroku databases BACKUP_TARGETS=all leaves out, written as
// BACKUP_TARGETS's.
func (ck *checker) exclude(raw string, all bool) []Target {
	const v = "BACKUP_EXCLUDE"
	fields := envlist.Split(raw)
	if len(fields) > 0 && !all {
		ck.add(v, "is set but BACKUP_TARGETS does not say all", "remove the databases from BACKUP_TARGETS instead, or set BACKUP_TARGETS=all")
		return nil
	}
	var out []Target
	for _, f := range fields {
		if ck.url(v, f) {
			continue
		}
		if strings.HasPrefix(f, "env:") || f == AllTargets {
			ck.add(v, ck.q(f)+" is not a Heroku database", "list app or app:DATABASE of databases BACKUP_TARGETS=all would archive; an env:VAR target is left out by removing it from BACKUP_TARGETS")
			continue
		}
		if t, ok := ck.herokuTarget(v, f); ok {
			out = append(out, t)
		}
	}
	return out
}

// url reports (as a problem of variable v) an item that is a URL: a database URL carries its
// password, so it is said what it is without quoting it.
func (ck *checker) url(v, f string) bool {
	if strings.Contains(f, "://") {
		ck.add(v, "contains a URL", "list Heroku app names (and optionally app:DATABASE), never a database URL")
		return true
	}
	return false
}

// herokuTarget reads app or app:DATABASE of variable v.
func (ck *checker) herokuTarget(v, f string) (Target, bool) {
	// Only the first colon separates: other-app::DATABASE_URL keeps its own.
	app, db, hasDB := strings.Cut(f, ":")
	if !hasDB {
		db = "DATABASE_URL"
	}
	ok := true
	if !appNameRE.MatchString(app) {
		fix := "use the app's name as shown by `heroku apps` (lowercase letters, digits and dashes)"
		if lower := strings.ToLower(app); lower != app && appNameRE.MatchString(lower) {
			fix += ", here probably " + strconv.Quote(lower)
		}
		ck.add(v, ck.q(app)+" is not a valid Heroku app name", fix)
		ok = false
	}
	switch {
	case hasDB && db == "":
		ck.add(v, ck.q(f)+" names no database after the colon", "write app:DATABASE, e.g. shop:HEROKU_POSTGRESQL_PINK, or just the app for DATABASE_URL")
		ok = false
	case !dbNameRE.MatchString(db):
		ck.add(v, ck.q(db)+" is not a database name", "use a name the Heroku CLI accepts: DATABASE_URL, HEROKU_POSTGRESQL_PINK, postgresql-globular-83867 or other-app::DATABASE_URL")
		ok = false
	}
	return Target{App: app, Database: db}, ok
}

// envTarget checks an env:VAR target: VAR is set in this environment to a postgres:// URL. The
// value is a secret: never quoted.
func (ck *checker) envTarget(name string) (Target, bool) {
	const v = "BACKUP_TARGETS"
	if !spec.IsVarName(name) {
		ck.add(v, ck.q("env:"+name)+" does not name a variable", "write env:VAR with VAR in capitals, digits and underscores, e.g. env:BACKUP_DATABASE_URL")
		return Target{}, false
	}
	raw := strings.TrimSpace(os.Getenv(name))
	switch {
	case raw == "":
		ck.add(name, "not set (BACKUP_TARGETS names env:"+name+")", attachFix(name))
		return Target{}, false
	case !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://"):
		ck.add(name, "is not a postgres:// URL (BACKUP_TARGETS names env:"+name+")", "set it to the database's URL, postgres://user:password@host:port/database")
		return Target{}, false
	}
	if p, ok := urlPassword(raw); ok {
		ck.secrets = append(ck.secrets, p)
	}
	ck.secrets = append(ck.secrets, raw)
	return Target{App: "env", Database: name, Env: true, URL: raw}, true
}

// attachFix says how to set VAR of an env:VAR target. `heroku addons:attach --as NAME` sets
// NAME_URL: it can set only a variable whose name ends in _URL.
func attachFix(name string) string {
	if as, ok := strings.CutSuffix(name, "_URL"); ok && as != "" {
		return "set it to the database's URL, e.g. by attaching a read-only credential, which sets " + name + ": heroku addons:attach ADDON --credential backup --as " + as + " -a THIS_APP"
	}
	return "set it to the database's URL (heroku config:set " + name + "=...), or attach a read-only credential with `heroku addons:attach ADDON --credential backup --as " + name + " -a THIS_APP`, which sets " + name + "_URL, and name env:" + name + "_URL in BACKUP_TARGETS"
}

// herokuListed reports whether BACKUP_TARGETS lists a Heroku database (which needs
// HEROKU_API_KEY), or nothing at all. It reads the list as written: an env:VAR target needs no
// key, also when VAR is missing, which is its own problem.
func herokuListed(raw string) bool {
	items := envlist.Split(raw)
	return len(items) == 0 || slices.ContainsFunc(items, func(f string) bool { return !strings.HasPrefix(f, "env:") })
}

// canonicalDB gives the names the Heroku CLI resolves alike one spelling, for duplicate
// detection: DATABASE and DATABASE_URL; shop::X and X on app shop.
func canonicalDB(app, db string) string {
	db = strings.TrimPrefix(db, app+"::")
	return strings.TrimSuffix(strings.ToUpper(db), "_URL")
}

// hasDotSegment reports whether the (decoded) path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// percent reads a percentage strictly between 0 and 100 ("50%" or "50") as a fraction.
func (ck *checker) percent(v, raw string) float64 {
	n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(raw, "%")), 64)
	if err != nil || n <= 0 || n >= 100 {
		ck.add(v, ck.q(raw)+" is not a percentage between 0 and 100", "write it like 50%")
		return 0
	}
	return n / 100
}

// httpURL accepts https URLs, and http only towards loopback (a local simulator or store). It
// returns the URL without a trailing slash, or "" after a problem.
func (ck *checker) httpURL(v, raw string) string {
	return ck.checkURL(v, "", raw, "write it like https://host, or unset it for the default")
}

// checkURL is httpURL for a URL inside a variable's value: what names it in messages, and the
// fix for a URL that is not one.
func (ck *checker) checkURL(v, what, raw, fix string) string {
	u, err := url.Parse(raw)
	if err == nil {
		err = netguard.Check(u)
	}
	switch {
	case errors.Is(err, netguard.ErrPlainHTTP):
		ck.add(v, what+ck.q(shownURL(u, raw))+" uses plain http", "use https: credentials must not cross the network in the clear (plain http is allowed only on loopback)")
		return ""
	case err != nil:
		ck.add(v, what+ck.q(shownURL(u, raw))+" is not an absolute http(s) URL", fix)
		return ""
	}
	return strings.TrimRight(raw, "/")
}

// shownURL is what a message may quote of a URL: webhook and ping URLs carry their secret in
// the path or query, so only scheme and host are kept.
func shownURL(u *url.URL, raw string) string {
	if u == nil || u.Host == "" {
		if i := strings.IndexAny(raw, "/?@"); i >= 0 {
			return raw[:i] + "/..."
		}
		return raw
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/..."
	}
	return s
}

// s3Vars are the global S3 settings: the defaults of every s3:// destination, which its own
// parameters override.
var s3Vars = []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_S3", "S3_FORCE_PATH_STYLE", "S3_STORAGE_CLASS", "S3_SSE", "S3_SSE_KMS_KEY_ID"}

// s3 checks the global S3 settings, read is which of them the destinations read (globalVars).
func (ck *checker) s3(e env, c *Config, read map[string]bool) {
	needRegion, needChain, kms := read["AWS_REGION"], read["AWS_ACCESS_KEY_ID"], read["S3_SSE_KMS_KEY_ID"]
	c.Region = e.Region
	if c.Region == "" {
		c.Region = e.DefaultRegion
	}
	if c.Region == "" && needRegion {
		ck.add("AWS_REGION", "not set, and the archive is in S3", "set it to the bucket's region, e.g. `heroku config:set AWS_REGION=eu-west-1`, or give each s3:// destination its region= in ARCHIVE_URL")
	}
	id, secret := e.AccessKeyID != "", e.SecretAccessKey != ""
	switch {
	case id && !secret:
		ck.add("AWS_SECRET_ACCESS_KEY", "not set, but AWS_ACCESS_KEY_ID is", "set both keys of the uploader's access key pair")
	case secret && !id:
		ck.add("AWS_ACCESS_KEY_ID", "not set, but AWS_SECRET_ACCESS_KEY is", "set both keys of the uploader's access key pair")
	case needChain && !id && !secret && e.Profile == "" && e.WebIdentityTokenFile == "" && e.ContainerFullURI == "" && e.ContainerRelativeURI == "":
		ck.add("AWS_ACCESS_KEY_ID", "no AWS credentials in the environment", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the uploader (see `pgoffsite policy` for its least-privilege policy), or give each s3:// destination keys=NAME in ARCHIVE_URL")
	}
	// The SDK prefers the S3-specific endpoint; both are checked, the one it uses is recorded.
	for _, ep := range []struct{ name, value string }{{"AWS_ENDPOINT_URL_S3", e.EndpointS3}, {"AWS_ENDPOINT_URL", e.Endpoint}} {
		if ep.value = strings.TrimSpace(ep.value); ep.value != "" {
			if u := ck.httpURL(ep.name, ep.value); u != "" && c.S3Endpoint == "" {
				c.S3Endpoint = u
			}
		}
	}
	ck.regionShape(e, c)
	b, err := strconv.ParseBool(e.S3ForcePathStyle)
	if err != nil {
		ck.add("S3_FORCE_PATH_STYLE", ck.q(e.S3ForcePathStyle)+" is not a boolean", "use true or false")
	}
	c.S3ForcePathStyle = b

	c.S3StorageClass = ck.storageClass("S3_STORAGE_CLASS", "", e.S3StorageClass)
	c.S3SSE = ck.sse("S3_SSE", "", e.S3SSE)
	if e.S3SSEKMSKeyID != "" && c.S3SSE != "aws:kms" && !kms {
		ck.add("S3_SSE_KMS_KEY_ID", "set, but S3_SSE is not aws:kms", "set S3_SSE=aws:kms to use the key, or unset S3_SSE_KMS_KEY_ID")
	}
}

// storageClass checks a storage class, as S3_STORAGE_CLASS or a destination's storage_class=
// gives it (what names it in messages), and returns it as S3 spells it.
func (ck *checker) storageClass(v, what, raw string) string {
	class := strings.ToUpper(raw)
	if !slices.Contains(storageClasses, class) {
		ck.add(v, what+ck.q(raw)+" is not an S3 storage class", "use one of "+strings.Join(storageClasses, ", "))
	}
	return class
}

// sse checks a server-side encryption mode, as S3_SSE or a destination's sse= gives it, and
// returns it as S3 spells it (any case is accepted here; S3 wants it exact), "" for none.
func (ck *checker) sse(v, what, raw string) string {
	switch {
	case raw == "":
	case strings.EqualFold(raw, "AES256"):
		return "AES256"
	case strings.EqualFold(raw, "aws:kms"):
		return "aws:kms"
	default:
		ck.add(v, what+ck.q(raw)+" is not an encryption mode", "use AES256 (S3-managed keys) or aws:kms (with S3_SSE_KMS_KEY_ID), or leave it empty for the bucket's default")
	}
	return ""
}

// bucket reads setup-bucket's variables. What depends on several of them (an expiry after the
// last transition) is checked by setup-bucket itself, after its flags are applied.
func (ck *checker) bucket(e env) Bucket {
	b := Bucket{
		TransitionDays:       ck.days("BUCKET_TRANSITION_DAYS", e.BucketTransitionDays, -1, "a number of days such as 30, or -1 to never move archives (stores without Glacier)"),
		TransitionClass:      strings.ToUpper(e.BucketTransitionClass),
		DeepArchiveDays:      ck.days("BUCKET_DEEP_ARCHIVE_DAYS", e.BucketDeepArchiveDays, 0, "a number of days such as 180, or 0 (the default) to never move archives on to DEEP_ARCHIVE"),
		ExpireDays:           ck.days("BUCKET_EXPIRE_DAYS", e.BucketExpireDays, 0, "a number of days such as 400 (the default), or 0 to keep archives forever"),
		NoncurrentExpireDays: ck.days("BUCKET_NONCURRENT_EXPIRE_DAYS", e.BucketNoncurrentExpireDays, 1, "a number of days such as 30 (the default)"),
		ObjectLockDays:       ck.days("BUCKET_OBJECT_LOCK_DAYS", e.BucketObjectLockDays, 0, "a number of days such as 30, or 0 (the default) for no default retention"),
		ObjectLockMode:       strings.ToUpper(e.BucketObjectLockMode),
	}
	if b.TransitionDays == 0 {
		ck.add("BUCKET_TRANSITION_DAYS", `"0" is not a number of days`, "use a number of days such as 30, or -1 to never move archives (stores without Glacier)")
	}
	switch b.TransitionClass {
	case "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE":
	default:
		ck.add("BUCKET_TRANSITION_CLASS", ck.q(e.BucketTransitionClass)+" is not a storage class archives can move to", "use GLACIER (the default), GLACIER_IR or DEEP_ARCHIVE")
	}
	switch b.ObjectLockMode {
	case "", "GOVERNANCE", "COMPLIANCE":
	default:
		ck.add("BUCKET_OBJECT_LOCK_MODE", ck.q(e.BucketObjectLockMode)+" is not an Object Lock mode", "use GOVERNANCE (the default) or COMPLIANCE, with BUCKET_OBJECT_LOCK_DAYS")
	}
	if b.ObjectLockMode != "" && e.BucketObjectLockDays == "0" {
		ck.add("BUCKET_OBJECT_LOCK_MODE", "set, but BUCKET_OBJECT_LOCK_DAYS is not", "set BUCKET_OBJECT_LOCK_DAYS to the retention in days, or unset BUCKET_OBJECT_LOCK_MODE")
	}
	return b
}

// days reads a whole number of days, at least min.
func (ck *checker) days(v, raw string, min int, fix string) int {
	n, err := strconv.Atoi(raw)
	switch {
	case err != nil:
		ck.add(v, ck.q(raw)+" is not a whole number of days", "use "+fix)
	case n < min:
		ck.add(v, ck.q(raw)+" is too small", "use "+fix)
	}
	return n
}

const mib = 1 << 20

func (ck *checker) streaming(e env, c *Config) {
	n, err := strconv.Atoi(e.Concurrency)
	if err != nil || n < 1 || n > 64 {
		ck.add("ARCHIVE_CONCURRENCY", ck.q(e.Concurrency)+" is not a number from 1 to 64", "use e.g. 16 (the default): the most download connections; how many are used is measured while the download runs")
	}
	c.Concurrency = n
	c.PartSize = ck.size("ARCHIVE_PART_SIZE", e.PartSize)
	if c.PartSize != 0 && (c.PartSize < 5*mib || c.PartSize > 5<<30) {
		ck.add("ARCHIVE_PART_SIZE", ck.q(e.PartSize)+" is outside S3's part sizes", "use 5MiB to 5GiB, e.g. 8MiB (the default) or 64MiB")
	}
	c.MemoryLimit = ck.size("ARCHIVE_MEMORY_LIMIT", e.MemoryLimit)
	need := bufferBytes(c.Archives, c.PartSize)
	least := need(1, 1)
	if c.PartSize >= 5*mib && c.MemoryLimit != 0 && c.MemoryLimit < least {
		per := "two parts of " + e.PartSize
		if _, n := dest.UploadMemory(c.Archives, c.PartSize, 1); n > 1 {
			per += fmt.Sprintf(" for each of the %d S3 destinations in ARCHIVE_URL", n)
		}
		ck.add("ARCHIVE_MEMORY_LIMIT", fmt.Sprintf("%s is less than the %d MiB that two download ranges and %s need", ck.q(e.MemoryLimit), least/mib, per),
			"raise it, or lower ARCHIVE_PART_SIZE")
	}
	// Targets archived at once share the budget, and so do the streams of one target's parallel
	// dump (PG_DUMP_JOBS): each stream gets its part (a run of fewer targets than BACKUP_PARALLEL
	// divides only by as many as it has).
	targets, streams := int64(max(1, min(c.Parallel, len(c.Targets)))), int64(c.StreamsPerTarget())
	shares := targets * streams
	if shares > 1 && c.PartSize >= 5*mib && c.MemoryLimit >= least && c.MemoryLimit/shares < least {
		fits := c.MemoryLimit / least
		if streams > 1 && fits/targets >= 1 {
			ck.add("PG_DUMP_JOBS", fmt.Sprintf("%s streams for each of %d targets at once cannot each get the %d MiB they need from ARCHIVE_MEMORY_LIMIT=%s", e.PgDumpJobs, targets, least/mib, e.MemoryLimit),
				fmt.Sprintf("lower it to %d, raise ARCHIVE_MEMORY_LIMIT, or lower ARCHIVE_PART_SIZE", fits/targets))
		} else {
			each := ""
			if streams > 1 {
				each = fmt.Sprintf(" of %d streams each (PG_DUMP_JOBS)", streams)
			}
			ck.add("BACKUP_PARALLEL", fmt.Sprintf("%s targets at once%s cannot each get the %d MiB they need from ARCHIVE_MEMORY_LIMIT=%s", e.Parallel, each, least/mib, e.MemoryLimit),
				fmt.Sprintf("lower it to %d, raise ARCHIVE_MEMORY_LIMIT, or lower ARCHIVE_PART_SIZE", max(1, fits/streams)))
		}
	}
	c.Concurrency, c.UploadConcurrency = FitBuffers(c.MemoryLimit/shares, c.Concurrency, need)
}

// bufferBytes is what one target's buffers hold, with down download ranges and up upload parts
// per destination in flight, to the destinations as: the download's slots (fetch.Memory) and
// each destination's uploads, as its kind says (dest.UploadMemory: none for a directory or an
// SFTP server).
func bufferBytes(as []spec.Archive, partSize int64) func(down, up int) int64 {
	return func(down, up int) int64 {
		uploads, _ := dest.UploadMemory(as, partSize, up)
		return fetch.Memory(down, fetch.RangeSize) + uploads
	}
}

// FitBuffers is the one rule of how many download ranges (down) and upload parts per
// destination (up) one target keeps in flight at most so that its buffers (need, bufferBytes)
// fit in budget: from concurrency each, the uploads are lowered first, to two per destination (a
// download range is a fraction of a part, so download connections are the cheap ones, and the
// download is what a per-connection cap at the source holds back), then both by turns, never
// below one. With BACKUP_PARALLEL each target's budget is its share of ARCHIVE_MEMORY_LIMIT.
func FitBuffers(budget int64, concurrency int, need func(down, up int) int64) (down, up int) {
	over := func() bool { return need(down, up) > budget }
	down, up = concurrency, concurrency
	for floor := min(2, concurrency); over() && up > floor; {
		up--
	}
	for over() && (down > 1 || up > 1) {
		if down >= up && down > 1 {
			down--
		} else {
			up--
		}
	}
	return down, up
}

// size reads a byte size such as 8MiB, 64MB, 1GiB or 1048576.
func (ck *checker) size(v, raw string) int64 {
	s := raw
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
	if err != nil || n <= 0 || n > (1<<62)/mult {
		ck.add(v, ck.q(raw)+" is not a size", "write it like 8MiB, 64MiB or 1GiB")
		return 0
	}
	return n * mult
}

// retention reads RETENTION and RETENTION_TIMEZONE; the zone is UTC when unset, and when a
// problem leaves it unknown, so that RetentionZone is never nil.
func (ck *checker) retention(e env, c *Config) {
	c.RetentionZone = time.UTC
	p, err := retention.Parse(e.Retention)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			msg, _ := strings.CutPrefix(line, retention.Var+": ")
			ck.add(retention.Var, msg, `classes and how long each is kept, e.g. "daily=35d weekly=13w monthly=25m yearly=7y" (d, w, m, y: days, weeks, months, years)`)
		}
	}
	c.Retention = p
	zone, err := retention.LoadZone(e.RetentionTimezone)
	if err != nil {
		ck.add(retention.ZoneVar, ck.q(e.RetentionTimezone)+" is not a time zone", "use an IANA name such as Europe/Berlin, America/New_York or UTC (the default)")
		return
	}
	c.RetentionZone = zone
}

// ParseSize reads a byte size written as the ARCHIVE_* sizes are (8MiB, 5GiB, 64MB, 1048576);
// ok is false for anything else.
func ParseSize(raw string) (n int64, ok bool) {
	ck := &checker{}
	n = ck.size("", strings.TrimSpace(raw))
	return n, len(ck.ps) == 0
}
