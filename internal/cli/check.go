package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// checker prints one line per check and counts failures.
type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) ok(format string, a ...any)   { fmt.Fprintf(c.w, "ok    "+format+"\n", a...) }
func (c *checker) warn(format string, a ...any) { fmt.Fprintf(c.w, "warn  "+format+"\n", a...) }
func (c *checker) fix(format string, a ...any)  { fmt.Fprintf(c.w, "      fix: "+format+"\n", a...) }
func (c *checker) fail(format string, a ...any) {
	c.failed++
	fmt.Fprintf(c.w, "FAIL  "+format+"\n", a...)
}

// checkRetryBudget bounds each Heroku call of the preflight: it reports, it does not wait out
// an outage.
const checkRetryBudget = 20 * time.Second

func newCheckCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "preflight: API key, targets, newest backups, archive writable, notifications",
		Long: "Preflight, run once after setting up (heroku run pgoffsite check): the API key, each target and its newest\n" +
			"backup, each destination writable the way a backup writes, the notification endpoints; each line says\n" +
			"what to fix. Exit status 1 when a check failed.",
		Example: "  heroku run pgoffsite check -a my-pgoffsite",
		Args:    noArgs("it checks the configuration in the environment"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), f)
		},
	}
}

// runCheck is `pgoffsite check`: the preflight a Deploy-button user runs once
// (`heroku run pgoffsite check`) to learn whether a backup run would work, and what to fix if not.
func runCheck(ctx context.Context, f *Factory) error {
	f.load = func() (config.Config, error) { return config.LoadFor("check") }
	cfg, err := f.Config()
	if err != nil {
		return badConfig(err)
	}
	c := &checker{w: f.Redactor().Wrap(f.Stdout)}
	archives := make([]string, len(cfg.Archives))
	for i, a := range cfg.Archives {
		archives[i] = a.String()
	}
	mode, method := howArchived(cfg)
	how := "method " + method
	if mode != "" {
		how = "mode " + mode + ", " + how
	}
	c.ok("configuration: %d target(s), %s, archive %s", len(cfg.Targets), how, strings.Join(archives, " "))
	if cfg.Retention.Set() {
		c.ok("retention: RETENTION=%q, periods counted in %s from each backup's finish time:", cfg.Retention.String(), cfg.RetentionZone)
		for _, cp := range bucket.RetentionPlan(cfg.Retention, cfg.Bucket.TransitionDays < 0) {
			fmt.Fprintf(c.w, "        %s\n", cp)
		}
	}

	f.capHerokuRetries(checkRetryBudget)
	hk := f.Heroku()
	herokuTargets := slices.ContainsFunc(cfg.Targets, func(t config.Target) bool { return !t.Env })
	if herokuTargets && !checkKey(ctx, c, hk) {
		return finishCheck(c)
	}
	for _, t := range cfg.Targets {
		switch {
		case t.Env:
			checkDump(ctx, c, cfg, t, dumpsource.Env{URLs: cfg.EnvURLs()})
		case cfg.Method == config.MethodPgDump:
			checkDump(ctx, c, cfg, t, dumpsource.Heroku{API: hk})
		default:
			checkTarget(ctx, c, hk, cfg, t)
		}
	}

	for i, a := range cfg.Archives {
		checkDestination(ctx, c, cfg, i, a)
	}

	n, err := notify.New(notify.Options{HeartbeatURL: cfg.HeartbeatURL, WebhookURL: cfg.WebhookURL, Timeout: 10 * time.Second})
	if err == nil && (cfg.HeartbeatURL != "" || cfg.WebhookURL != "") {
		if errs := n.Check(ctx); len(errs) > 0 {
			for _, e := range errs {
				c.fail("notification: %v", e)
			}
		} else {
			c.ok("notification endpoints answer (their hosts are reachable)")
		}
	} else if cfg.HeartbeatURL == "" {
		c.warn("no HEARTBEAT_URL: a run that Heroku Scheduler skips or that dies will go unnoticed; add a healthchecks.io (or similar) check")
	}
	return finishCheck(c)
}

// keyChecker is what checkKey needs from Heroku.
type keyChecker interface {
	Account(ctx context.Context) (string, error)
	KeyExpiry(ctx context.Context) (expiresIn time.Duration, expires, known bool, err error)
}

// checkKey checks HEROKU_API_KEY; false when Heroku does not accept it, since nothing else can
// be checked then.
func checkKey(ctx context.Context, c *checker, hk keyChecker) bool {
	email, err := hk.Account(ctx)
	var ae *heroku.APIError
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		c.fail("HEROKU_API_KEY is not accepted by Heroku: %v", err)
		c.fix("create a long-lived key with `heroku authorizations:create -d pgoffsite` (as a user with access to the target apps), then set it: `heroku config:set HEROKU_API_KEY=<the token> -a <this pgoffsite app>`")
		return false
	case err != nil:
		c.fail("HEROKU_API_KEY could not be checked: %v", err)
		return false
	}
	c.ok("HEROKU_API_KEY belongs to %s", email)
	switch in, expires, known, err := hk.KeyExpiry(ctx); {
	case err != nil || !known:
		c.warn("could not tell whether HEROKU_API_KEY expires; keys from `heroku login` do — use one from `heroku authorizations:create`")
	case expires:
		c.warn("HEROKU_API_KEY expires in %s (a `heroku login` key?): scheduled runs will start failing then; create a long-lived one with `heroku authorizations:create`", in.Round(time.Hour))
	default:
		c.ok("HEROKU_API_KEY does not expire")
	}
	return true
}

// targetChecker is what checkTarget needs from Heroku.
type targetChecker interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	Latest(ctx context.Context, db heroku.Database) (heroku.Transfer, error)
	Retention(ctx context.Context, db heroku.Database) (heroku.Retention, error)
	Schedules(ctx context.Context, db heroku.Database) ([]heroku.Schedule, error)
}

// checkTarget checks one target: that it resolves, its newest backup, and what the mode does
// with Heroku's own backups: capture mode makes Heroku rotate manual backups out, latest mode
// needs a schedule to have anything new to archive.
func checkTarget(ctx context.Context, c *checker, hk targetChecker, cfg config.Config, t config.Target) {
	db, err := hk.Resolve(ctx, t.App, t.Database)
	if err != nil {
		c.fail("%s: %v", t, err)
		return
	}
	billed := ""
	if db.BillingApp != db.App {
		billed = ", billed to " + db.BillingApp
	}
	c.ok("%s: add-on %s (%s) attached as %s%s", t, db.AddonName, db.Plan, db.Attachment, billed)
	b, err := hk.Latest(ctx, db)
	switch {
	case err != nil && cfg.Mode == pgbackups.ModeLatest:
		c.fail("%s: %v", t, err)
	case err != nil:
		c.warn("%s: Heroku has no successful backup yet (capture mode makes one each run)", t)
	default:
		age := time.Since(b.FinishedAt.Time).Round(time.Minute)
		if cfg.Mode == pgbackups.ModeLatest && age > cfg.MaxAge {
			c.fail("%s: newest backup %s is %s old, older than BACKUP_MAX_AGE=%s: check `heroku pg:backups:schedules -a %s`", t, b.Name(), age, cfg.MaxAge, db.App)
		} else {
			c.ok("%s: newest Heroku backup %s, %s old, %d bytes", t, b.Name(), age, b.ProcessedBytes)
		}
	}

	if cfg.Mode == pgbackups.ModeCapture {
		if r, err := hk.Retention(ctx, db); err != nil {
			c.warn("%s: could not count Heroku's manual backups: %v", t, err)
		} else {
			c.warn("%s: BACKUP_MODE=capture: %s", t, r.Warning(db))
		}
	}
	create := fmt.Sprintf("`heroku pg:backups:schedule %s --at '02:00 UTC' -a %s`", db.Attachment, db.App)
	ss, err := hk.Schedules(ctx, db)
	switch {
	case err != nil:
		c.warn("%s: could not read Heroku's backup schedules: %v", t, err)
	case len(ss) > 0:
		names := make([]string, len(ss))
		for i, s := range ss {
			names[i] = s.String()
		}
		if cfg.Mode == pgbackups.ModeCapture {
			c.ok("%s: a Heroku backup schedule exists (%s): with BACKUP_MODE=latest each run archives its newest backup instead of capturing", t, strings.Join(names, "; "))
		} else {
			c.ok("%s: Heroku backup schedule: %s", t, strings.Join(names, "; "))
		}
	case cfg.Mode == pgbackups.ModeCapture:
		c.warn("%s: no Heroku backup schedule: create one with %s before setting BACKUP_MODE=latest", t, create)
	default:
		c.warn("%s: no Heroku backup schedule: BACKUP_MODE=latest archives the newest backup Heroku has, and nothing makes new ones; create one with %s", t, create)
	}
}

// checkDump checks a target backed up with pg_dump: its URL is found, the server answers, and
// pg_dump is new enough for it; it tells the database's size.
func checkDump(ctx context.Context, c *checker, cfg config.Config, t config.Target, loc dumpsource.Locator) {
	db, err := loc.Locate(ctx, archive.Target{App: t.App, Database: t.Database, Env: t.Env})
	if err != nil {
		c.fail("%s: %v", t, err)
		return
	}
	p, err := dumpsource.Check(ctx, db, cfg.PgDumpPath, secrets(cfg)...)
	if err != nil {
		c.fail("%s: %v", t, err)
		if p.ServerVersion == "" {
			c.fix("check the URL in %s and that this dyno can reach the server", envOrAttachment(t))
		}
		return
	}
	c.ok("%s: connected, PostgreSQL %s, %s; %s is pg_dump %s", t, p.ServerVersion, units.IEC(p.Bytes)+" on disk (the dump is usually smaller)", p.PgDump, p.ClientVersion)
}

func envOrAttachment(t config.Target) string {
	if t.Env {
		return t.Database
	}
	return "the attachment's config var on " + t.App
}

func finishCheck(c *checker) error {
	if c.failed > 0 {
		fmt.Fprintf(c.w, "%d check(s) failed\n", c.failed)
		return exitWith(ExitFailed)
	}
	fmt.Fprintln(c.w, "all checks passed")
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// probeTimeout bounds the probe write of one destination: a few bytes, retried for a while.
const probeTimeout = 90 * time.Second

// checkDestination checks one of ARCHIVE_URL's destinations (the i-th, from 0): that the
// uploader can write there the way the job writes, and which safety feature it lacks. Every line
// names the destination.
func checkDestination(ctx context.Context, c *checker, cfg config.Config, i int, a spec.Archive) {
	if cfg.Retention.Set() && a.Scheme != "s3" {
		c.warn("archive %s: RETENTION: the class is recorded in each manifest and the markers are files there, but nothing expires archives in a directory or on an SFTP server: remove old ones yourself", a)
	}
	switch a.Scheme {
	case "file":
		openAndProbe(ctx, c, cfg, a)
	case "s3":
		checkS3(ctx, c, cfg, i, a)
	case "sftp":
		checkSFTP(ctx, c, cfg, a)
	default:
		c.fail("archive %s: unsupported scheme %q", a, a.Scheme)
	}
}

// probeWrite writes a small object the way the job writes an archive (Put: atomic, never
// replacing); false when that failed. The uploader cannot delete it, so it stays until the
// bucket's lifecycle rules expire it.
func probeWrite(ctx context.Context, c *checker, a spec.Archive, st store.Store) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	key := fmt.Sprintf("_pgoffsite-check/%s-%s.txt", time.Now().UTC().Format("20060102T150405Z"), randomSuffix())
	body := "written by `pgoffsite check` to prove the uploader can write here; safe to delete\n"
	if err := st.Put(ctx, store.Object{Key: key, Size: int64(len(body)), ContentType: "text/plain"}, strings.NewReader(body)); err != nil {
		c.fail("archive %s is not writable: %v", a, err)
		if fix := s3err.Fix(s3err.Of(err), s3err.Vars{Keys: a.Keys}); fix != "" {
			c.fix("%s", fix)
		}
		return false
	}
	c.ok("archive is writable: wrote %s", st.Location(key))
	return true
}

// checkS3 checks an S3 destination: the probe write, then what the store or bucket lacks that
// the archives' safety relies on.
func checkS3(ctx context.Context, c *checker, cfg config.Config, i int, a spec.Archive) {
	s, err := dest.ResolveS3(cfg, a)
	if err != nil {
		c.fail("archive %v", err)
		return
	}
	client, err := dest.S3Client(ctx, cfg, a)
	if err != nil {
		c.fail("archive %v", err)
		return
	}
	endpoint := dest.EffectiveEndpoint(cfg, a)
	if !dest.OnAWS(endpoint) && s.StorageClass != "" && s.StorageClass != "STANDARD" {
		c.warn("archive %s: storage class %s is Amazon S3's; %s is not AWS, and S3-compatible providers mostly lack it (the Glacier classes above all): uploads may be refused", a, s.StorageClass, endpointHost(endpoint))
		c.fix("leave storage_class= out of this destination's URL (STANDARD), and S3_STORAGE_CLASS unset if it applies to it")
	}
	st := dest.NewS3Store(client, cfg, a, s)
	if probeWrite(ctx, c, a, st) && st.ConditionalWritesUnsupported() {
		c.warn("archive %s: the store rejects conditional writes (If-None-Match: *): archives are written without the check that nothing is there yet, so one run could replace another's copy; keep versioning on so the older copy survives", a)
	}

	ictx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	f := bucket.Inspect(ictx, client, a.Bucket)
	setup := "pgoffsite setup-bucket"
	if s3Count(cfg) > 1 {
		setup = fmt.Sprintf("pgoffsite setup-bucket --destination %d", i+1)
	}
	switch f.Versioning {
	case bucket.On:
		c.ok("archive %s: versioning is on (an overwrite or delete keeps the older bytes)", a)
	case bucket.Off:
		c.warn("archive %s: versioning is off: an overwrite or a delete destroys an archive's bytes; run `%s` with the bucket owner's keys", a, setup)
	case bucket.Unsupported:
		c.warn("archive %s: the store does not implement versioning: an overwrite or a delete destroys an archive's bytes; only keys that cannot delete (see `pgoffsite policy`) protect the archives there", a)
	}
	switch f.ObjectLock {
	case bucket.On:
		c.ok("archive %s: Object Lock is enabled", a)
	case bucket.Unsupported:
		c.warn("archive %s: the store does not implement Object Lock: whoever holds the bucket owner's keys can delete archives before they expire", a)
	}
	switch f.Lifecycle {
	case bucket.On:
		c.ok("archive %s: lifecycle rules are set", a)
	case bucket.Off:
		c.warn("archive %s: no lifecycle rules: archives are kept (and paid for) forever, and the parts of interrupted uploads are never cleaned up; run `%s`", a, setup)
	case bucket.Unsupported:
		c.warn("archive %s: the store does not implement lifecycle rules: old archives never expire and the parts of interrupted uploads stay; remove them with the provider's own tools", a)
	}
	if cfg.Retention.Set() {
		checkRetention(ictx, c, cfg, a, client, st, setup)
	}
}

// checkRetention checks what RETENTION needs of an S3 destination: that the uploader can look up
// the markers, and that the bucket's lifecycle rules are RETENTION's.
func checkRetention(ctx context.Context, c *checker, cfg config.Config, a spec.Archive, client *s3.Client, st *s3store.Store, setup string) {
	if _, err := st.MarkerExists(ctx, retention.MarkerPrefix+"_check"); err != nil {
		c.fail("archive %s: the retention markers cannot be looked up: %v", a, err)
		c.fix("give the uploader the policy `pgoffsite policy` prints: it may list %s and tag archives; without it every archive is kept as the longest class", bucket.MarkerPrefix(a.Prefix))
	} else {
		c.ok("archive %s: the retention markers can be looked up", a)
	}
	drift, err := bucket.RetentionDrift(ctx, client, bucket.Options{Bucket: a.Bucket, Prefix: a.Prefix, Retention: cfg.Retention,
		TransitionDays: cfg.Bucket.TransitionDays, NoncurrentExpireDays: cfg.Bucket.NoncurrentExpireDays})
	switch {
	case errors.Is(err, bucket.ErrRulesUnreadable):
		c.warn("archive %s: these keys cannot see the lifecycle rules (the uploader's never can), so whether they match RETENTION is not known; run `pgoffsite check` with the reader's keys (`pgoffsite policy --reader`), or `%s --dry-run` with the owner's", a, setup)
	case err != nil:
		c.warn("archive %s: the lifecycle rules could not be compared with RETENTION: %v", a, err)
	case len(drift) > 0:
		c.fail("archive %s: the bucket's lifecycle rules do not match RETENTION (%s differ): archives would not be kept as RETENTION says", a, strings.Join(drift, ", "))
		c.fix("run `%s` with the bucket owner's keys and the same RETENTION", setup)
	default:
		c.ok("archive %s: the lifecycle rules match RETENTION", a)
	}
}

// s3Count is how many of cfg's destinations are S3 buckets.
func s3Count(cfg config.Config) int {
	n := 0
	for _, a := range cfg.Archives {
		if a.Scheme == "s3" {
			n++
		}
	}
	return n
}

// endpointHost names an endpoint for people, without any path or query.
func endpointHost(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return "the endpoint"
}

// checkSFTP checks an SFTP destination: the connection (the pinned host key, the private key)
// and a probe write the way a backup writes (a temporary name, renamed when complete).
func checkSFTP(ctx context.Context, c *checker, cfg config.Config, a spec.Archive) {
	openAndProbe(ctx, c, cfg, a)
}

// openAndProbe opens a destination the way a backup opens it and writes the probe there.
func openAndProbe(ctx context.Context, c *checker, cfg config.Config, a spec.Archive) {
	st, caps, err := openDestination(ctx, cfg, a)
	if err != nil {
		c.fail("archive %s: %v", a, err) // a refused host key says what to check
		return
	}
	if caps.Close != nil {
		defer caps.Close()
	}
	probeWrite(ctx, c, a, st)
}
