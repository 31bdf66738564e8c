// Package drill is `pgoffsite drill`: for each target's newest archive, a restore into a
// throwaway Heroku Postgres add-on provisioned on the pgoffsite app, row counts compared with the
// manifest, the user's DRILL_CHECKS run, and the add-on deleted whatever happened. Left-overs of
// killed drills are removed first; what the add-ons cost is logged and recorded.
package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/throwaway"
	"github.com/pgoffsite/pgoffsite/internal/units"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// API is what a drill needs of the Platform API (heroku.Client).
type API interface {
	CreateAddon(ctx context.Context, app, plan, name string) (heroku.Addon, error)
	Addon(ctx context.Context, app, id string) (heroku.Addon, error)
	Addons(ctx context.Context, app string) ([]heroku.Addon, error)
	DeleteAddon(ctx context.Context, app, id string) error
	AddonURL(ctx context.Context, app string, a heroku.Addon) (heroku.Secret, error)
}

// Database restores an archive into the drill's database and asks it the checks.
type Database interface {
	Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result
	Check(ctx context.Context, url, statement string) (bool, error)
}

// Postgres is the Database of a real drill: verify.Archive's restore and pgrestore.Check.
type Postgres struct{}

func (Postgres) Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result {
	return verify.Archive(ctx, src, key, o)
}

func (Postgres) Check(ctx context.Context, url, statement string) (bool, error) {
	return pgrestore.Check(ctx, pgrestore.Options{URL: url, Name: "drill"}, statement)
}

// Deps are what a drill works with.
type Deps struct {
	API      API
	Source   verify.Source // where the archives are read
	Database Database
	// Record keeps the drill's outcome beside the archive, for pgoffsite status; v.Err is the
	// drill's verdict. It cannot fail the drill.
	Record   func(ctx context.Context, key string, v verify.Result, rec *catalog.Drill)
	Log      zerolog.Logger
	Redactor *logging.Redactor // learns each add-on's URL: errors and the log are scrubbed of it
}

// Options say what to drill and how.
type Options struct {
	Targets    []archive.Target
	App        string              // the pgoffsite app, where the add-ons are made
	Plan       heroku.PostgresPlan // DRILL_PLAN
	Checks     []string            // DRILL_CHECKS: statements that answer one boolean each
	Timeout    time.Duration       // DRILL_TIMEOUT: one drill, provisioning to deletion
	Keep       bool                // --keep: leave each add-on for a person to inspect
	Identities *agecrypt.Identities
	Timing     Timing
	Jobs       int // --jobs: sessions that restore a set at once
}

// Timing spaces the waits for Heroku: a drill's database waits as every throwaway add-on does.
type Timing = throwaway.Timing

// Prefix begins the name of every add-on a drill provisions: what tells a left-over of a killed
// drill from the app's other add-ons.
const Prefix = "pgoffsite-drill-"

// drills are the throwaway add-ons drills make.
var drills = throwaway.Kind{Prefix: Prefix, Noun: "drill database", Job: "drill", TimeoutVar: "DRILL_TIMEOUT"}

// ErrFailed is returned by Run when a drill failed or the run was interrupted; the log says
// which and why.
var ErrFailed = errors.New("drill: not every drill passed")

// Run removes the add-ons killed drills left behind, then drills each target's newest archive
// in turn, and logs the run's total with its cost. The results' errors are scrubbed of the
// add-ons' URLs; the error is ErrFailed (wrapped) when any drill failed or ctx ended.
func Run(ctx context.Context, deps Deps, opts Options) ([]archive.Result, error) {
	d := &driller{Deps: deps, o: opts}
	d.removeLeftovers(ctx)
	var results []archive.Result
	var drills []*catalog.Drill
	for _, t := range opts.Targets {
		if ctx.Err() != nil {
			break
		}
		r, rec := d.target(ctx, t)
		results = append(results, r)
		if rec != nil {
			drills = append(drills, rec)
		}
	}
	err := d.summarize(results, drills, ctx.Err() != nil)
	for i := range results {
		if results[i].Err != nil {
			// The add-on's URL became a secret while the drill ran: scrub with the redactor.
			results[i].Err = errors.New(d.Redactor.Scrub(results[i].Err.Error()))
		}
	}
	return results, err
}

type driller struct {
	Deps
	o Options
}

// removeLeftovers deletes the add-ons that killed drills left on the app: named like a drill's
// and older than a drill may take. Younger ones may be another drill's, running now.
func (d *driller) removeLeftovers(ctx context.Context) {
	drills.RemoveLeftovers(ctx, d.API, d.Log, d.o.App, d.o.Timeout)
}

// target drills the newest archive of t; a drill that cannot start is summarized here.
func (d *driller) target(ctx context.Context, t archive.Target) (archive.Result, *catalog.Drill) {
	r, rec := d.drillTarget(ctx, t)
	if rec == nil {
		report.Failed(d.Log, r)
	}
	return r, rec
}

func (d *driller) drillTarget(ctx context.Context, t archive.Target) (archive.Result, *catalog.Drill) {
	begin := time.Now()
	r := archive.Result{Target: t}
	var key string
	var err error
	if t.Env {
		key, err = verify.LatestEnv(ctx, d.Source, t.Database)
	} else {
		key, err = verify.Latest(ctx, d.Source, t.App, t.Database)
	}
	if err != nil {
		r.Err = err
		return r, nil
	}
	r.Key, r.Location = key, d.Source.Location(key)
	m, err := catalog.ReadManifest(ctx, d.Source, key)
	if err != nil {
		r.Err = fmt.Errorf("drill %s: %w; nothing was provisioned", r.Location, err)
		return r, nil
	}
	r.Backup, r.Bytes = m.Backup, m.Bytes
	if err := d.preflight(key, m); err != nil {
		r.Err = fmt.Errorf("drill %s: %w; nothing was provisioned", r.Location, err)
		return r, nil
	}
	v, rec := d.drill(ctx, t, key)
	r.Err, r.Duration = v.Err, time.Since(begin)
	d.Record(ctx, key, v, rec)
	ev := d.Log.Info()
	if r.Err != nil {
		ev = d.Log.Error().Err(r.Err)
	}
	passed := 0
	for _, c := range rec.Checks {
		if c.Passed {
			passed++
		}
	}
	ev = ev.Str("app", t.App).Str("database", t.Database).Str("backup", r.Backup).Str("location", r.Location).
		Str("addon", rec.Addon).Str("plan", rec.Plan).Int("tables", v.Tables).Int64("rows", v.Rows).Bool("restored", v.Restored).
		Int("checks", len(rec.Checks)).Int("checks_passed", passed).
		Str("provision", secs(rec.ProvisionSeconds)).Str("restore", secs(rec.RestoreSeconds)).Str("duration", r.Duration.Round(time.Millisecond).String()).
		Str("cost_usd", fmt.Sprintf("%.4f", rec.CostUSD)).Bool("addon_deleted", rec.Deleted)
	if r.Err != nil {
		ev.Msg("summary: FAILED")
	} else {
		ev.Msg("summary: drill passed: restored into a fresh database, row counts equal, checks true")
	}
	return r, rec
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// preflight refuses, before anything is provisioned, what cannot succeed: an encrypted archive
// without an identity, an archive whose data does not fit the plan.
func (d *driller) preflight(key string, m catalog.Manifest) error {
	if (m.Encryption != nil || catalog.IsEncrypted(key)) && d.o.Identities == nil {
		to := "recipients the manifest does not name"
		if m.Encryption != nil && len(m.Encryption.Recipients) > 0 {
			var fps []string
			for _, r := range m.Encryption.Recipients {
				fps = append(fps, r.Fingerprint)
			}
			to = strings.Join(fps, ", ")
		}
		return fmt.Errorf("%w; it is encrypted to %s: set AGE_IDENTITY to the text of one of their identity files (heroku run -x --env AGE_IDENTITY=... pgoffsite drill; -x passes its exit status on), or give --identity FILE", verify.ErrNoIdentity, to)
	}
	need := restoredSize(m)
	if plan := d.o.Plan; need > plan.StorageBytes {
		hint := "no plan pgoffsite knows is big enough"
		for _, p := range heroku.PostgresPlans {
			if p.StorageBytes >= need {
				hint = "set DRILL_PLAN to a bigger plan, e.g. " + p.Name
				break
			}
		}
		return fmt.Errorf("the archive holds %s of data, more than the %s storage of DRILL_PLAN %s: %s", units.IEC(need), units.IEC(plan.StorageBytes), plan.Name, hint)
	}
	return nil
}

// restoredSize is what the restored database holds at least: the archive's uncompressed table
// and large object data (its structure, from the manifest), or the dump's size when that is
// larger or unknown. Indexes come on top.
func restoredSize(m catalog.Manifest) int64 {
	n := m.Bytes
	if m.Encryption != nil {
		n = m.Encryption.PlaintextBytes
	}
	if m.Structure != nil {
		n = max(n, m.Structure.DataBytes)
	}
	return n
}

// addonName names a drill's add-on: the prefix, the UTC time, and a few random characters, since
// add-on names are unique across all of Heroku.
func addonName(now time.Time) string { return drills.Name(now) }

// drill provisions the add-on, restores the archive into it, counts, runs the checks, and
// deletes the add-on whatever happened (unless Keep).
func (d *driller) drill(ctx context.Context, t archive.Target, key string) (v verify.Result, rec *catalog.Drill) {
	rec = &catalog.Drill{Plan: d.o.Plan.Name, Checks: []catalog.DrillCheck{}}
	loc := d.Source.Location(key)
	dctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	fail := func(err error) verify.Result {
		if dctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("%w (the drill took longer than DRILL_TIMEOUT %s)", err, d.o.Timeout)
		}
		if strings.HasPrefix(err.Error(), "verify "+loc) {
			v.Err = fmt.Errorf("drill: %w", err) // it names the archive already
		} else {
			v.Err = fmt.Errorf("drill %s: %w", loc, err)
		}
		return v
	}
	name := addonName(time.Now())
	rec.Addon = name
	d.Log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("plan", d.o.Plan.Name).Str("pgoffsite_app", d.o.App).
		Msg("provisioning a throwaway database for the drill")
	created := time.Now()
	ad, err := d.API.CreateAddon(dctx, d.o.App, d.o.Plan.Name, name)
	// From here on the add-on may exist, even when the POST's answer was lost: it is deleted by
	// name in every case, on a context of its own, so that a SIGTERM does not skip it.
	defer func() {
		if derr := d.deprovision(ctx, t, name, rec, created); derr != nil {
			v.Err = errors.Join(v.Err, fmt.Errorf("drill %s: %w", loc, derr))
		}
	}()
	if err != nil {
		return fail(err), rec
	}
	ad, err = d.waitProvisioned(dctx, ad)
	rec.ProvisionSeconds = time.Since(created).Seconds()
	if err != nil {
		return fail(err), rec
	}
	dbURL, err := throwaway.URL(dctx, d.API, d.o.App, ad, d.Redactor)
	if err != nil {
		return fail(err), rec
	}
	d.Log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("provisioned_in", secs(rec.ProvisionSeconds)).
		Msg("drill database provisioned: restoring the archive into it")
	restoreBegin := time.Now()
	v = d.Database.Restore(dctx, d.Source, key, verify.Options{RestoreTo: dbURL, Identities: d.o.Identities, Name: "drill", Jobs: d.o.Jobs})
	rec.RestoreSeconds = time.Since(restoreBegin).Seconds()
	if v.Err != nil {
		return fail(v.Err), rec
	}
	if falses := d.checks(dctx, t, dbURL, rec); len(falses) > 0 {
		return fail(errors.New(strings.Join(falses, "; "))), rec
	}
	return v, rec
}

// checks runs DRILL_CHECKS against the restored database, recording each in rec; it returns
// what each false or failed one says.
func (d *driller) checks(ctx context.Context, t archive.Target, dbURL string, rec *catalog.Drill) (falses []string) {
	for i, sql := range d.o.Checks {
		ok, err := d.Database.Check(ctx, dbURL, sql)
		c := catalog.DrillCheck{SQL: sql, Passed: ok && err == nil}
		ev := d.Log.Info()
		switch {
		case err != nil:
			c.Error = d.Redactor.Scrub(err.Error())
			falses = append(falses, fmt.Sprintf("DRILL_CHECKS statement %d (%s) failed: %s", i+1, sql, c.Error))
			ev = d.Log.Error().Str("error", c.Error)
		case !ok:
			falses = append(falses, fmt.Sprintf("DRILL_CHECKS statement %d (%s) is false", i+1, sql))
			ev = d.Log.Error()
		}
		ev.Str("app", t.App).Str("database", t.Database).Int("check", i+1).Str("sql", sql).Bool("passed", c.Passed).Msg("drill check")
		rec.Checks = append(rec.Checks, c)
	}
	return falses
}

// waitProvisioned polls the add-on until Heroku has provisioned it, for at most Timing.Provision.
func (d *driller) waitProvisioned(ctx context.Context, ad heroku.Addon) (heroku.Addon, error) {
	return drills.Wait(ctx, d.API, d.o.App, ad, d.o.Timing)
}

// deprovision deletes the drill's add-on (by name: its id may never have come back), on a
// context of its own with a short deadline, also after a SIGTERM. With Keep it says how to
// remove it instead.
func (d *driller) deprovision(ctx context.Context, t archive.Target, name string, rec *catalog.Drill, created time.Time) error {
	held := func() {
		rec.HeldSeconds = time.Since(created).Seconds()
		rec.CostUSD = d.o.Plan.CostUSD(rec.HeldSeconds / 3600)
	}
	app := d.o.App
	if d.o.Keep {
		held()
		d.Log.Warn().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("pgoffsite_app", app).
			Str("remove_with", throwaway.RemoveCommand(name, app)).
			Str("url_with", fmt.Sprintf("heroku addons:info %s -a %s; heroku pg:psql %s -a %s", name, app, name, app)).
			Msg("--keep: the drill database is left for inspection; it is billed until removed, and the next drill removes it once older than DRILL_TIMEOUT")
		return nil
	}
	err := throwaway.Delete(ctx, d.API, app, name)
	held()
	if err != nil {
		d.Log.Error().Err(err).Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("pgoffsite_app", app).
			Str("remove_with", throwaway.RemoveCommand(name, app)).
			Msg("cannot delete the drill database: it is billed until removed; remove it by hand (the next drill also removes it once older than DRILL_TIMEOUT)")
		return fmt.Errorf("the drill database %s could not be deleted (remove it with %s): %w", name, throwaway.RemoveCommand(name, app), err)
	}
	rec.Deleted = true
	d.Log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("held", secs(rec.HeldSeconds)).Msg("drill database deleted")
	return nil
}

// summarize logs the run's total line, with what the drills cost; ErrFailed when a drill
// failed or the run was interrupted.
func (d *driller) summarize(results []archive.Result, drills []*catalog.Drill, interrupted bool) error {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	var cost, held float64
	for _, rec := range drills {
		cost += rec.CostUSD
		held += rec.HeldSeconds
	}
	ev := report.Total(d.Log, failed, interrupted)
	msg := "drill finished"
	switch {
	case interrupted:
		msg = "drill interrupted"
	case failed > 0:
		msg = "drill finished with failures"
	}
	costNote := fmt.Sprintf("%d drill database(s) held %s in all: about $%.4f at list price (plan price per month, pro rata)", len(drills), secs(held), cost)
	if d.o.Keep && len(drills) > 0 {
		costNote += ", and the kept ones are billed until removed"
	}
	ev.Int("targets", len(results)).Int("passed", len(results)-failed).Int("failed", failed).
		Str("cost_usd", fmt.Sprintf("%.4f", cost)).Str("cost", costNote).Msg(msg)
	switch {
	case interrupted:
		return fmt.Errorf("%w: the run was interrupted after %d of %d targets", ErrFailed, len(results), len(d.o.Targets))
	case failed > 0:
		return fmt.Errorf("%w: %d of %d failed", ErrFailed, failed, len(results))
	}
	return nil
}
