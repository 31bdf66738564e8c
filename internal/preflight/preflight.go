// Package preflight is what `pgoffsite check` checks apart from the destinations (each kind
// probes its own): the Heroku API key, each target and its newest backup, pg_dump against each
// database it dumps, the notification endpoints. It reports through a Reporter, one line per
// finding; printing them is the command's business.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Reporter takes the check's findings, each a format and its arguments: what is fine, what is
// risky, what fails (a failed check), and how to fix the failure or warning just reported.
type Reporter interface {
	OK(format string, a ...any)
	Warn(format string, a ...any)
	Fail(format string, a ...any)
	Fix(format string, a ...any)
}

// KeyChecker is what Key needs from Heroku.
type KeyChecker interface {
	Account(ctx context.Context) (string, error)
	KeyExpiry(ctx context.Context) (expiresIn time.Duration, expires, known bool, err error)
}

// TargetChecker is what Target needs from Heroku.
type TargetChecker interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	Latest(ctx context.Context, db heroku.Database) (heroku.Transfer, error)
	Retention(ctx context.Context, db heroku.Database) (heroku.Retention, error)
	Schedules(ctx context.Context, db heroku.Database) ([]heroku.Schedule, error)
}

// Heroku is what Targets needs from Heroku: the key, the targets, the URLs of the databases
// pg_dump reads, and the databases the key can see.
type Heroku interface {
	KeyChecker
	TargetChecker
	DatabaseLister
	DatabaseURL(ctx context.Context, db heroku.Database) (heroku.Secret, error)
	Addons(ctx context.Context, app string) ([]heroku.Addon, error) // the forks on the pgoffsite app
}

// DatabaseLister lists every Heroku Postgres database the key can see, once each.
type DatabaseLister interface {
	PostgresAddons(ctx context.Context) ([]heroku.Addon, error)
}

// Targets checks the API key (when a target is on Heroku), then every target, each the way cfg
// archives it, then that every database the key can see is covered (Coverage); false when
// Heroku refused the key, since nothing else of Heroku can be checked then. secrets are the
// values pg_dump's errors must not show.
func Targets(ctx context.Context, r Reporter, hk Heroku, cfg config.Config, secrets []string) bool {
	onHeroku := false
	for _, t := range cfg.Targets {
		onHeroku = onHeroku || !t.Env
	}
	if onHeroku && !Key(ctx, r, hk) {
		return false
	}
	covered := map[string]bool{}
	for _, t := range cfg.Targets {
		switch {
		case t.Env:
			Dump(ctx, r, cfg, t, dumpsource.Env{URLs: cfg.EnvURLs()}, secrets)
		case cfg.Method == config.MethodFork:
			if db, ok := Fork(ctx, r, hk, cfg.AppName, cfg.Fork.Plan, t.App, t.Database); ok {
				covered[db.AddonID] = true
				Dump(ctx, r, cfg, t, dumpsource.Heroku{API: hk}, secrets) // the fork runs the same server
			}
		case cfg.Method == config.MethodPgDump:
			Dump(ctx, r, cfg, t, dumpsource.Heroku{API: hk}, secrets)
			if db, err := hk.Resolve(ctx, t.App, t.Database); err == nil {
				covered[db.AddonID] = true
			}
		default:
			if db, ok := Target(ctx, r, hk, cfg, t); ok {
				covered[db.AddonID] = true
			}
		}
	}
	if onHeroku {
		Coverage(ctx, r, hk, cfg, covered)
	}
	if cfg.Method == config.MethodFork {
		ForkLeftovers(ctx, r, hk, cfg.AppName, cfg.Fork.Timeout)
	}
	return true
}

// Coverage lists the Heroku Postgres databases the key can see that no target archives and
// BACKUP_EXCLUDE does not leave out, each with the target to add: a database added to an app
// later is not left unprotected unnoticed. covered are the add-on ids the targets resolved to.
// With BACKUP_TARGETS=all every database is a target already, so nothing is asked of Heroku.
func Coverage(ctx context.Context, r Reporter, hk DatabaseLister, cfg config.Config, covered map[string]bool) {
	if cfg.AllTargets {
		r.OK("coverage: BACKUP_TARGETS=all archives every Heroku Postgres database the key can see (%d, less BACKUP_EXCLUDE's %d)", len(cfg.Targets), len(cfg.Exclude))
		return
	}
	dbs, err := hk.PostgresAddons(ctx)
	if err != nil {
		r.Warn("coverage: could not list the Heroku Postgres databases the key can see: %v", err)
		return
	}
	missing := cfg.Uncovered(dbs, covered)
	if len(missing) == 0 {
		r.OK("coverage: every Heroku Postgres database the key can see (%d) is a target", len(dbs))
		return
	}
	entries := make([]string, 0, len(cfg.Targets)+len(missing))
	for _, t := range cfg.Targets {
		entries = append(entries, t.Entry())
	}
	for _, a := range missing {
		t := config.TargetOf(a)
		r.Warn("coverage: %s (add-on %s, %s) is a Heroku Postgres database no target archives", t.Entry(), a.Name, a.Plan)
		entries = append(entries, t.Entry())
	}
	r.Fix("add them to BACKUP_TARGETS: heroku config:set BACKUP_TARGETS=\"%s\" -a THIS_APP (or BACKUP_TARGETS=all); leave out those you mean to with BACKUP_EXCLUDE and BACKUP_TARGETS=all",
		strings.Join(entries, " "))
}

// Key checks HEROKU_API_KEY; false when Heroku does not accept it.
func Key(ctx context.Context, r Reporter, hk KeyChecker) bool {
	email, err := hk.Account(ctx)
	var ae *heroku.APIError
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		r.Fail("HEROKU_API_KEY is not accepted by Heroku: %v", err)
		r.Fix("create a long-lived key with `heroku authorizations:create -d pgoffsite` (as a user with access to the target apps), then set it: `heroku config:set HEROKU_API_KEY=<the token> -a <this pgoffsite app>`")
		return false
	case err != nil:
		r.Fail("HEROKU_API_KEY could not be checked: %v", err)
		return false
	}
	r.OK("HEROKU_API_KEY belongs to %s", email)
	switch in, expires, known, err := hk.KeyExpiry(ctx); {
	case err != nil || !known:
		r.Warn("could not tell whether HEROKU_API_KEY expires; keys from `heroku login` do — use one from `heroku authorizations:create`")
	case expires:
		r.Warn("HEROKU_API_KEY expires in %s (a `heroku login` key?): scheduled runs will start failing then; create a long-lived one with `heroku authorizations:create`", in.Round(time.Hour))
	default:
		r.OK("HEROKU_API_KEY does not expire")
	}
	return true
}

// Target checks one target: that it resolves, its newest backup, and what the mode does with
// Heroku's own backups: capture mode makes Heroku rotate manual backups out, latest mode needs a
// schedule to have anything new to archive. It returns the database t resolved to; false when
// it did not resolve.
func Target(ctx context.Context, r Reporter, hk TargetChecker, cfg config.Config, t config.Target) (heroku.Database, bool) {
	db, err := hk.Resolve(ctx, t.App, t.Database)
	if err != nil {
		r.Fail("%s: %v", t, err)
		return db, false
	}
	billed := ""
	if db.BillingApp != db.App {
		billed = ", billed to " + db.BillingApp
	}
	r.OK("%s: add-on %s (%s) attached as %s%s", t, db.AddonName, db.Plan, db.Attachment, billed)
	b, err := hk.Latest(ctx, db)
	switch {
	case err != nil && cfg.Mode == pgbackups.ModeLatest:
		r.Fail("%s: %v", t, err)
	case err != nil:
		r.Warn("%s: Heroku has no successful backup yet (capture mode makes one each run)", t)
	default:
		age := time.Since(b.FinishedAt.Time).Round(time.Minute)
		if cfg.Mode == pgbackups.ModeLatest && age > cfg.MaxAge {
			r.Fail("%s: newest backup %s is %s old, older than BACKUP_MAX_AGE=%s: check `heroku pg:backups:schedules -a %s`", t, b.Name(), age, cfg.MaxAge, db.App)
		} else {
			r.OK("%s: newest Heroku backup %s, %s old, %d bytes", t, b.Name(), age, b.ProcessedBytes)
		}
	}

	if cfg.Mode == pgbackups.ModeCapture {
		if rt, err := hk.Retention(ctx, db); err != nil {
			r.Warn("%s: could not count Heroku's manual backups: %v", t, err)
		} else {
			r.Warn("%s: BACKUP_MODE=capture: %s", t, rt.Warning(db))
		}
	}
	schedules(ctx, r, hk, cfg, t, db)
	return db, true
}

// schedules checks t's Heroku backup schedules: latest mode needs one, capture mode could use
// one instead of capturing.
func schedules(ctx context.Context, r Reporter, hk TargetChecker, cfg config.Config, t config.Target, db heroku.Database) {
	create := fmt.Sprintf("`heroku pg:backups:schedule %s --at '02:00 UTC' -a %s`", db.Attachment, db.App)
	ss, err := hk.Schedules(ctx, db)
	switch {
	case err != nil:
		r.Warn("%s: could not read Heroku's backup schedules: %v", t, err)
	case len(ss) > 0:
		names := make([]string, len(ss))
		for i, s := range ss {
			names[i] = s.String()
		}
		if cfg.Mode == pgbackups.ModeCapture {
			r.OK("%s: a Heroku backup schedule exists (%s): with BACKUP_MODE=latest each run archives its newest backup instead of capturing", t, strings.Join(names, "; "))
		} else {
			r.OK("%s: Heroku backup schedule: %s", t, strings.Join(names, "; "))
		}
	case cfg.Mode == pgbackups.ModeCapture:
		r.Warn("%s: no Heroku backup schedule: create one with %s before setting BACKUP_MODE=latest", t, create)
	default:
		r.Warn("%s: no Heroku backup schedule: BACKUP_MODE=latest archives the newest backup Heroku has, and nothing makes new ones; create one with %s", t, create)
	}
}

// Dump checks a target backed up with pg_dump: its URL is found, the server answers, and
// pg_dump is new enough for it; it tells the database's size.
func Dump(ctx context.Context, r Reporter, cfg config.Config, t config.Target, loc dumpsource.Locator, secrets []string) {
	db, err := loc.Locate(ctx, archive.Target{App: t.App, Database: t.Database, Env: t.Env})
	if err != nil {
		r.Fail("%s: %v", t, err)
		return
	}
	p, err := dumpsource.Check(ctx, db, cfg.PgDumpPath, secrets...)
	if err != nil {
		r.Fail("%s: %v", t, err)
		if p.ServerVersion == "" {
			r.Fix("check the URL in %s and that this dyno can reach the server", envOrAttachment(t))
		}
		return
	}
	r.OK("%s: connected, PostgreSQL %s, %s; %s is pg_dump %s", t, p.ServerVersion, units.IEC(p.Bytes)+" on disk (the dump is usually smaller)", p.PgDump, p.ClientVersion)
	if cfg.PgDumpJobs > 1 {
		r.OK("%s: PG_DUMP_JOBS=%d: %d pg_dump sessions share one exported snapshot, plus the session that holds it (%d connections)", t, cfg.PgDumpJobs, cfg.PgDumpJobs, cfg.PgDumpJobs+1)
	}
}

func envOrAttachment(t config.Target) string {
	if t.Env {
		return t.Database
	}
	return "the attachment's config var on " + t.App
}

// Notifications checks that the hosts of the heartbeats (each command's own, config.Heartbeat)
// and of the webhook answer, warns when two commands share one heartbeat (a check kept green by
// a verify or a drill while the backups stopped), and warns when nothing would notice a backup
// run that never happens.
func Notifications(ctx context.Context, r Reporter, cfg config.Config) {
	names, urls := cfg.HeartbeatVars()
	if cfg.WebhookURL != "" {
		names, urls = append(names, "NOTIFY_WEBHOOK_URL"), append(urls, cfg.WebhookURL)
	}
	failed := false
	for i, name := range names {
		if err := notify.Reach(ctx, name, urls[i], 10*time.Second); err != nil {
			r.Fail("notification: %v", err)
			r.Fix("check the host in %s, or unset it", name)
			failed = true
		}
	}
	if len(names) > 0 && !failed {
		r.OK("notification endpoints answer (%s: their hosts are reachable)", strings.Join(names, ", "))
	}
	for _, shared := range cfg.SharedHeartbeats() {
		r.Warn("%s: a check that several commands ping stays green while any of them runs, so a stopped backup goes unnoticed while verify, status or drill still run", shared)
		r.Fix("give each command a check of its own (HEARTBEAT_URL is the backup's alone), or unset the others")
	}
	if cfg.HeartbeatURL == "" {
		r.Warn("no HEARTBEAT_URL: a backup run that Heroku Scheduler skips or that dies will go unnoticed; add a healthchecks.io (or similar) check and set HEARTBEAT_URL to its ping URL")
	}
}
