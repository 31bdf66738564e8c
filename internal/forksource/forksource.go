// Package forksource is BACKUP_METHOD=fork: each Heroku target is dumped from a fork of its
// database, provisioned for the dump on pgoffsite's own app (HEROKU_APP_NAME) and deleted after
// it whatever happened, so that production carries no dump load. The dump itself is dumpsource's,
// handed the fork's URL as the database to dump: whatever dumpsource does (parallel jobs
// included), it does to the fork.
package forksource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/throwaway"
)

// API is what a fork capture needs of the Platform API (heroku.Client).
type API interface {
	throwaway.API
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	ForkAddon(ctx context.Context, app, plan, name string, db heroku.Database) (heroku.Addon, error)
}

// Prefix begins the name of every fork: what tells a killed run's left-over fork from the app's
// other add-ons.
const Prefix = "pgoffsite-fork-"

// Forks are the throwaway add-ons fork captures make.
var Forks = throwaway.Kind{Prefix: Prefix, Noun: "fork", Job: "backup", TimeoutVar: "FORK_TIMEOUT"}

// Source dumps each Heroku target from a fork of its database.
type Source struct {
	API API
	// Dump is how a fork is dumped (PG_DUMP_PATH, silence, secrets, and what else dumpsource
	// reads); its Locate is replaced by the fork's database.
	Dump dumpsource.Source
	App  string // HEROKU_APP_NAME: where forks are made
	Plan string // FORK_PLAN; "" forks onto the target's own plan
	// Timeout bounds one fork capture, provisioning to deletion (FORK_TIMEOUT): forks older than
	// it are left-overs of a killed run, removed by the next. 0 is DefaultTimeout.
	Timeout  time.Duration
	Timing   throwaway.Timing
	Redactor *logging.Redactor // learns each fork's URL: errors and the log are scrubbed of it

	clean sync.Once
}

var _ archive.Source = (*Source)(nil)

// DefaultTimeout is FORK_TIMEOUT's default: a big fork takes a while to provision, and its dump
// hours more.
const DefaultTimeout = 12 * time.Hour

func (s *Source) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// Open forks t's database, waits until the fork is available, and starts dumping it. The fork is
// deleted when Open fails, else when the job closes the Body, on a context that outlives ctx.
func (s *Source) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	log := zerolog.Ctx(ctx).With().Logger()
	s.clean.Do(func() { Forks.RemoveLeftovers(ctx, s.API, log, s.App, s.timeout()) })
	db, err := s.API.Resolve(ctx, t.App, t.Database)
	if err != nil {
		return archive.Backup{}, err
	}
	plan := s.plan(db)
	if err := Refusal(db, plan); err != nil {
		return archive.Backup{}, fmt.Errorf("forksource: %s: %w; nothing was provisioned", t, err)
	}
	f := &fork{src: s, target: t, of: heroku.ForkOf(db), plan: plan, name: Forks.Name(time.Now()), log: log}
	fctx, cancel := context.WithTimeout(ctx, s.timeout())
	b, err := f.open(fctx, db)
	if err != nil {
		err = errors.Join(f.wrap(f.late(ctx, fctx, err)), f.destroy(ctx))
		cancel()
		return archive.Backup{}, errors.New(s.Redactor.Scrub(err.Error()))
	}
	b.Body = &body{ReadCloser: b.Body, f: f, ctx: ctx, fctx: fctx, cancel: cancel}
	return b, nil
}

func (s *Source) plan(db heroku.Database) string {
	if s.Plan != "" {
		return s.Plan
	}
	return db.Plan
}

// Refusal says why db cannot be forked onto plan, before anything is provisioned: Heroku has
// no forks on the Essential tier. nil when it can.
func Refusal(db heroku.Database, plan string) error {
	switch {
	case !heroku.CanFork(db.Plan):
		return fmt.Errorf("%s::%s is on %s, and Heroku cannot fork an Essential-tier database: set BACKUP_METHOD=pg_dump (pg_dump reads the database itself) or BACKUP_METHOD=pgbackups for it, or upgrade it to a Standard plan", db.App, db.Attachment, db.Plan)
	case !heroku.CanFork(plan):
		return fmt.Errorf("FORK_PLAN %s is an Essential-tier plan, and Heroku makes no forks there: set FORK_PLAN to a Standard or higher plan (e.g. heroku-postgresql:standard-0), or unset it to fork onto the database's own plan", plan)
	}
	return nil
}

// fork is one target's fork, from its creation to its deletion.
type fork struct {
	src      *Source
	target   archive.Target
	of, plan string
	name     string
	created  time.Time
	log      zerolog.Logger
	once     sync.Once
	err      error
}

// open provisions the fork, waits for it, reads its URL and starts pg_dump on it.
func (f *fork) open(ctx context.Context, db heroku.Database) (archive.Backup, error) {
	s := f.src
	f.log.Info().Str("app", db.App).Str("database", db.Attachment).Str("fork_of", f.of).Str("addon", f.name).Str("plan", f.plan).
		Str("pgoffsite_app", s.App).Msg("provisioning a fork of the database to dump it")
	f.created = time.Now()
	ad, err := s.API.ForkAddon(ctx, s.App, f.plan, f.name, db)
	if err != nil {
		return archive.Backup{}, err
	}
	timing := s.Timing
	if timing.Provision == 0 {
		timing.Provision = s.timeout() // a big fork takes hours: FORK_TIMEOUT bounds the wait
	}
	if ad, err = Forks.Wait(ctx, s.API, s.App, ad, timing); err != nil {
		return archive.Backup{}, err
	}
	dbURL, err := throwaway.URL(ctx, s.API, s.App, ad, s.Redactor)
	if err != nil {
		return archive.Backup{}, err
	}
	f.log.Info().Str("addon", f.name).Str("provisioned_in", time.Since(f.created).Round(time.Millisecond).String()).
		Msg("fork provisioned: dumping it")
	origin := &catalog.HerokuOrigin{App: db.App, Attachment: db.Attachment, Addon: db.AddonName, BillingApp: db.BillingApp, Plan: db.Plan}
	dump := s.Dump
	dump.Locate = located{dumpsource.Database{URL: dbURL, App: db.App, Name: db.Attachment, RequireTLS: true, Heroku: origin}}
	b, err := dump.Open(ctx, f.target)
	if err != nil {
		return b, err
	}
	b.Meta.Origin.Source = "fork"
	b.Meta.Origin.Fork = &catalog.ForkOrigin{Addon: f.name, App: s.App, Plan: f.plan, Of: f.of}
	return b, nil
}

// late says so when err came of FORK_TIMEOUT, not of the run's end.
func (f *fork) late(ctx, fctx context.Context, err error) error {
	if fctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("%w (the fork capture took longer than FORK_TIMEOUT %s)", err, f.src.timeout())
	}
	return err
}

// wrap names the fork in err.
func (f *fork) wrap(err error) error {
	return fmt.Errorf("fork %s of %s: %w", f.name, f.of, err)
}

// destroy deletes the fork once (by name: its id may never have come back), also after ctx
// ended, and logs what holding it cost.
func (f *fork) destroy(ctx context.Context) error {
	f.once.Do(func() {
		app := f.src.App
		err := throwaway.Delete(ctx, f.src.API, app, f.name)
		held := time.Since(f.created)
		ev := f.log.Info()
		if err != nil {
			ev = f.log.Error().Err(err).Str("remove_with", throwaway.RemoveCommand(f.name, app))
			f.err = fmt.Errorf("the fork %s could not be deleted (remove it with %s; the next backup removes it once older than FORK_TIMEOUT): %w", f.name, throwaway.RemoveCommand(f.name, app), err)
		}
		cost, note := Cost(f.plan, held)
		ev = ev.Str("app", f.target.App).Str("database", f.target.Database).Str("addon", f.name).Str("plan", f.plan).
			Str("held", held.Round(time.Millisecond).String()).Str("cost_usd", fmt.Sprintf("%.4f", cost)).Str("cost", note).Bool("addon_deleted", err == nil)
		if err != nil {
			ev.Msg("cannot delete the fork: it is billed until removed; remove it by hand")
		} else {
			ev.Msg("fork deleted")
		}
	})
	return f.err
}

// Cost is what holding a fork of plan for held costs at list price, and the words saying so.
func Cost(plan string, held time.Duration) (float64, string) {
	p, ok := heroku.FindPostgresPlan(plan)
	if !ok {
		return 0, fmt.Sprintf("the fork was held %s; %s's price is unknown to pgoffsite (see https://elements.heroku.com/addons/heroku-postgresql)", held.Round(time.Second), plan)
	}
	cost := p.CostUSD(held.Hours())
	return cost, fmt.Sprintf("the fork was held %s: about $%.4f at list price (%s at $%.0f a month, pro rata)", held.Round(time.Second), cost, p.Name, p.MonthlyUSD)
}

// located hands dumpsource the fork's database, whatever the target.
type located struct{ db dumpsource.Database }

func (l located) Locate(context.Context, archive.Target) (dumpsource.Database, error) {
	return l.db, nil
}

// body is the fork's dump: its errors name the fork, and closing it ends pg_dump and then
// deletes the fork.
type body struct {
	io.ReadCloser
	f         *fork
	ctx, fctx context.Context // the run's, and the fork's bounded by FORK_TIMEOUT
	cancel    context.CancelFunc
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.f.wrap(b.f.late(b.ctx, b.fctx, err))
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return errors.Join(err, b.f.destroy(b.ctx))
}
