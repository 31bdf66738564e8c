package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/verify"
	"github.com/pgoffsite/pgoffsite/internal/version"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// drillAPI is what a drill needs of the Platform API (heroku.Client).
type drillAPI interface {
	CreateAddon(ctx context.Context, app, plan, name string) (heroku.Addon, error)
	Addon(ctx context.Context, app, id string) (heroku.Addon, error)
	Addons(ctx context.Context, app string) ([]heroku.Addon, error)
	DeleteAddon(ctx context.Context, app, id string) error
	AddonURL(ctx context.Context, app string, a heroku.Addon) (heroku.Secret, error)
}

// drillPrefix begins the name of every add-on a drill provisions: what tells a left-over of a
// killed drill from the app's other add-ons.
const drillPrefix = "pgoffsite-drill-"

// drillDeleteTimeout bounds the DELETE after a drill. It runs after a SIGTERM too, within the
// 30 s before Heroku's SIGKILL, and before the notification's own bound.
const drillDeleteTimeout = 15 * time.Second

var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)

// drillApp is the pgoffsite app's name, from dyno metadata: the drill's add-ons are made there.
func drillApp() (string, error) {
	app := strings.TrimSpace(os.Getenv("HEROKU_APP_NAME"))
	switch {
	case app == "":
		return "", errors.New("  HEROKU_APP_NAME: not set: pgoffsite drill provisions its throwaway database on the pgoffsite app, which dyno metadata names: run `heroku labs:enable runtime-dyno-metadata -a APP` (APP: the pgoffsite app) and deploy again, or set HEROKU_APP_NAME to the app's name")
	case !appNameRE.MatchString(app):
		return "", fmt.Errorf("  HEROKU_APP_NAME: %q is not a Heroku app name: set it to the pgoffsite app's name (dyno metadata sets it: heroku labs:enable runtime-dyno-metadata -a APP)", app)
	}
	return app, nil
}

// drillOptions are the options of `pgoffsite drill`.
type drillOptions struct {
	Keep                  bool
	Identity, Destination string
}

func newDrillCmd(f *Factory) *cobra.Command {
	o := &drillOptions{}
	cmd := &cobra.Command{
		Use:   "drill [--keep] [--identity FILE] [--destination N]",
		Short: "restore each target's newest archive into a throwaway Heroku Postgres add-on and check it",
		Long: "Restore each target's newest archive into a throwaway Heroku Postgres add-on (DRILL_PLAN) on the pgoffsite\n" +
			"app, compare row counts, run DRILL_CHECKS, and delete the add-on; needs HEROKU_APP_NAME (dyno metadata).",
		Example: "  heroku run pgoffsite drill -a my-pgoffsite\n  pgoffsite drill --keep --destination 2",
		Args:    noArgs("targets come from BACKUP_TARGETS"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDrill(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Keep, "keep", false, "leave each drill's database for a person to inspect (billed until removed; the log says how)")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts encrypted archives (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "drill the copies at this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	return cmd
}

// runDrill is `pgoffsite drill`: for each target's newest archive, a restore drill into a
// throwaway Heroku Postgres add-on on the pgoffsite app, which is always deleted afterwards.
func runDrill(ctx context.Context, f *Factory, o *drillOptions) error {
	ids, idSecrets, idErr := loadIdentities(o.Identity)
	f.load = func() (config.Config, error) {
		cfg, err := config.LoadDrill()
		if err == nil {
			var a config.Archive
			if a, err = pickReadDestination(cfg, o.Destination); err != nil {
				err = fmt.Errorf("  --destination: %w", err)
			}
			cfg.Archive = a
		}
		return cfg, err
	}
	cfg, err := f.Config()
	app, appErr := drillApp()
	if err := errors.Join(withIdentityProblem(err, idErr, idSecrets), appErr); err != nil {
		return badConfig(err)
	}
	f.AddSecrets(idSecrets...)
	red, log := f.Redactor(), f.Logger()
	notifier, err := f.Notifier()
	if err != nil {
		return err
	}
	src, err := f.Source(ctx)
	if err != nil {
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot open the archive")
		return exitWith(ExitFailed)
	}
	d := &driller{
		api: f.Heroku(), provisionTimeout: f.DrillProvisionTimeout, pollBase: f.DrillPollBase, pollMax: f.DrillPollMax,
		app: app, cfg: cfg.Drill, keep: o.Keep, log: log, red: red, src: src, ids: ids,
	}
	log.Info().Str("version", version.Version).Str("pgoffsite_app", app).Str("plan", cfg.Drill.Plan.Name).
		Int("targets", len(cfg.Targets)).Int("checks", len(cfg.Drill.Checks)).Str("timeout", cfg.Drill.Timeout.String()).Msg("drill run started")
	started := f.Now()
	if err := notifier.Start(ctx); err != nil {
		log.Warn().Err(err).Msg("heartbeat start ping failed (the drill goes on)")
	}
	d.removeLeftovers(ctx)
	var results []archive.Result
	var drills []*archive.Drill
	for _, t := range cfg.Targets {
		if ctx.Err() != nil {
			break
		}
		r, rec := d.target(ctx, archive.Target{App: t.App, Database: t.Database, Env: t.Env})
		results = append(results, r)
		if rec != nil {
			drills = append(drills, rec)
		}
	}
	code := summarizeDrill(log, results, drills, ctx.Err() != nil, d.keep)
	for i := range results {
		if results[i].Err != nil {
			// The add-on's URL became a secret after the notifier was made: scrub with the log's redactor.
			results[i].Err = errors.New(red.Scrub(results[i].Err.Error()))
		}
	}
	notifyFinish(ctx, log, notifier, "drill", started, results)
	return exitWith(code)
}

type driller struct {
	api drillAPI
	// provisionTimeout bounds the wait for the add-on; pollBase and pollMax space its polls.
	provisionTimeout, pollBase, pollMax time.Duration
	app                                 string // the pgoffsite app, where the add-ons are made
	cfg                                 config.Drill
	keep                                bool
	log                                 zerolog.Logger
	red                                 *logging.Redactor
	src                                 verify.Source
	ids                                 *agecrypt.Identities
}

// removeLeftovers deletes the add-ons that killed drills left on the app: named like a drill's
// and older than a drill may take. Younger ones may be another drill's, running now.
func (d *driller) removeLeftovers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	list, err := d.api.Addons(ctx, d.app)
	if err != nil {
		d.log.Warn().Err(err).Str("pgoffsite_app", d.app).Msg("cannot list the app's add-ons to remove drill databases earlier drills left behind (the drill goes on)")
		return
	}
	for _, a := range list {
		if !strings.HasPrefix(a.Name, drillPrefix) {
			continue
		}
		age := time.Since(a.CreatedAt)
		if a.CreatedAt.IsZero() || age <= d.cfg.Timeout {
			d.log.Info().Str("addon", a.Name).Str("age", age.Round(time.Second).String()).
				Msg("a drill database younger than DRILL_TIMEOUT is on the app: left alone (another drill may be using it)")
			continue
		}
		if err := d.api.DeleteAddon(ctx, d.app, a.ID); err != nil {
			d.log.Error().Err(err).Str("addon", a.Name).Str("remove_with", removeCommand(a.Name, d.app)).
				Msg("cannot remove a drill database an earlier drill left behind (it is billed until removed)")
			continue
		}
		d.log.Warn().Str("addon", a.Name).Str("plan", a.Plan).Time("created_at", a.CreatedAt).Str("age", age.Round(time.Second).String()).
			Msg("removed a drill database that an earlier, interrupted drill left behind")
	}
}

func removeCommand(addon, app string) string {
	return fmt.Sprintf("heroku addons:destroy %s -a %s --confirm %s", addon, app, app)
}

// target drills the newest archive of t; a drill that cannot start is summarized here.
func (d *driller) target(ctx context.Context, t archive.Target) (archive.Result, *archive.Drill) {
	r, rec := d.drillTarget(ctx, t)
	if rec == nil {
		d.log.Error().Str("app", t.App).Str("database", t.Database).Str("backup", r.Backup).Str("location", r.Location).Err(r.Err).Msg("summary: FAILED")
	}
	return r, rec
}

func (d *driller) drillTarget(ctx context.Context, t archive.Target) (archive.Result, *archive.Drill) {
	begin := time.Now()
	r := archive.Result{Target: t}
	var key string
	var err error
	if t.Env {
		key, err = verify.LatestEnv(ctx, d.src, t.Database)
	} else {
		key, err = verify.Latest(ctx, d.src, t.App, t.Database)
	}
	if err != nil {
		r.Err = err
		return r, nil
	}
	r.Key, r.Location = key, d.src.Location(key)
	m, err := verify.ReadManifest(ctx, d.src, key)
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
	recordVerification(ctx, d.log, d.red, d.src, key, v, rec)
	ev := d.log.Info()
	if r.Err != nil {
		ev = d.log.Error().Err(r.Err)
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
func (d *driller) preflight(key string, m archive.Manifest) error {
	if (m.Encryption != nil || archive.IsEncrypted(key)) && d.ids == nil {
		to := "recipients the manifest does not name"
		if m.Encryption != nil && len(m.Encryption.Recipients) > 0 {
			var fps []string
			for _, r := range m.Encryption.Recipients {
				fps = append(fps, r.Fingerprint)
			}
			to = strings.Join(fps, ", ")
		}
		return fmt.Errorf("%w; it is encrypted to %s: set AGE_IDENTITY to the text of one of their identity files (heroku run --env AGE_IDENTITY=...), or give --identity FILE", verify.ErrNoIdentity, to)
	}
	need := restoredSize(m)
	if plan := d.cfg.Plan; need > plan.StorageBytes {
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
func restoredSize(m archive.Manifest) int64 {
	n := m.Bytes
	if m.Encryption != nil {
		n = m.Encryption.PlaintextBytes
	}
	if m.Structure != nil {
		n = max(n, m.Structure.DataBytes)
	}
	return n
}

// drillName names a drill's add-on: the prefix, the UTC time, and a few random characters, since
// add-on names are unique across all of Heroku.
func drillName(now time.Time) string {
	return drillPrefix + now.UTC().Format("20060102-150405") + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:4]
}

// drill provisions the add-on, restores the archive into it, counts, runs the checks, and
// deletes the add-on whatever happened (unless --keep).
func (d *driller) drill(ctx context.Context, t archive.Target, key string) (v verify.Result, rec *archive.Drill) {
	rec = &archive.Drill{Plan: d.cfg.Plan.Name, Checks: []archive.DrillCheck{}}
	loc := d.src.Location(key)
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	fail := func(err error) verify.Result {
		if dctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("%w (the drill took longer than DRILL_TIMEOUT %s)", err, d.cfg.Timeout)
		}
		if strings.HasPrefix(err.Error(), "verify "+loc) {
			v.Err = fmt.Errorf("drill: %w", err) // it names the archive already
		} else {
			v.Err = fmt.Errorf("drill %s: %w", loc, err)
		}
		return v
	}
	name := drillName(time.Now())
	rec.Addon = name
	d.log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("plan", d.cfg.Plan.Name).Str("pgoffsite_app", d.app).
		Msg("provisioning a throwaway database for the drill")
	created := time.Now()
	ad, err := d.api.CreateAddon(dctx, d.app, d.cfg.Plan.Name, name)
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
	secret, err := d.api.AddonURL(dctx, d.app, ad)
	if err != nil {
		return fail(err), rec
	}
	dbURL := secret.Reveal()
	d.red.Add(dbURL)
	if u, err := url.Parse(dbURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			d.red.Add(pw)
		}
	}
	d.log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("provisioned_in", secs(rec.ProvisionSeconds)).
		Msg("drill database provisioned: restoring the archive into it")
	restoreBegin := time.Now()
	v = verify.Archive(dctx, d.src, key, verify.Options{RestoreTo: dbURL, Identities: d.ids, Name: "drill"})
	rec.RestoreSeconds = time.Since(restoreBegin).Seconds()
	if v.Err != nil {
		return fail(v.Err), rec
	}
	var falses []string
	for i, sql := range d.cfg.Checks {
		ok, err := pgrestore.Check(dctx, pgrestore.Options{URL: dbURL, Name: "drill"}, sql)
		c := archive.DrillCheck{SQL: sql, Passed: ok && err == nil}
		ev := d.log.Info()
		switch {
		case err != nil:
			c.Error = d.red.Scrub(err.Error())
			falses = append(falses, fmt.Sprintf("DRILL_CHECKS statement %d (%s) failed: %s", i+1, sql, c.Error))
			ev = d.log.Error().Str("error", c.Error)
		case !ok:
			falses = append(falses, fmt.Sprintf("DRILL_CHECKS statement %d (%s) is false", i+1, sql))
			ev = d.log.Error()
		}
		ev.Str("app", t.App).Str("database", t.Database).Int("check", i+1).Str("sql", sql).Bool("passed", c.Passed).Msg("drill check")
		rec.Checks = append(rec.Checks, c)
	}
	if len(falses) > 0 {
		return fail(errors.New(strings.Join(falses, "; "))), rec
	}
	return v, rec
}

// waitProvisioned polls the add-on until Heroku has provisioned it, with growing waits, for at
// most provisionTimeout.
func (d *driller) waitProvisioned(ctx context.Context, ad heroku.Addon) (heroku.Addon, error) {
	wctx, cancel := context.WithTimeout(ctx, d.provisionTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		switch {
		case ad.State == heroku.AddonProvisioned && hasURLVar(ad):
			return ad, nil
		case ad.State == heroku.AddonDeprovisioned:
			return ad, fmt.Errorf("Heroku deprovisioned the drill database %s before it was ready", ad.Name)
		}
		if err := backoff.Sleep(wctx, backoff.Delay(d.pollBase, d.pollMax, attempt)); err != nil {
			if ctx.Err() == nil {
				return ad, fmt.Errorf("the drill database %s is still %q after %s: Heroku did not finish provisioning it (see https://status.heroku.com)", ad.Name, ad.State, d.provisionTimeout)
			}
			return ad, fmt.Errorf("waiting for the drill database %s to be provisioned: %w", ad.Name, err)
		}
		next, err := d.api.Addon(wctx, d.app, ad.Name)
		if err != nil {
			return ad, err
		}
		ad = next
	}
}

func hasURLVar(ad heroku.Addon) bool {
	for _, v := range ad.ConfigVars {
		if strings.HasSuffix(v, "_URL") {
			return true
		}
	}
	return false
}

// deprovision deletes the drill's add-on (by name: its id may never have come back), on a
// context of its own with a short deadline, also after a SIGTERM. With --keep it says how to
// remove it instead.
func (d *driller) deprovision(ctx context.Context, t archive.Target, name string, rec *archive.Drill, created time.Time) error {
	held := func() {
		rec.HeldSeconds = time.Since(created).Seconds()
		rec.CostUSD = d.cfg.Plan.CostUSD(rec.HeldSeconds / 3600)
	}
	if d.keep {
		held()
		d.log.Warn().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("pgoffsite_app", d.app).
			Str("remove_with", removeCommand(name, d.app)).
			Str("url_with", fmt.Sprintf("heroku addons:info %s -a %s; heroku pg:psql %s -a %s", name, d.app, name, d.app)).
			Msg("--keep: the drill database is left for inspection; it is billed until removed, and the next drill removes it once older than DRILL_TIMEOUT")
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drillDeleteTimeout)
	defer cancel()
	err := d.api.DeleteAddon(dctx, d.app, name)
	held()
	if err != nil {
		d.log.Error().Err(err).Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("pgoffsite_app", d.app).
			Str("remove_with", removeCommand(name, d.app)).
			Msg("cannot delete the drill database: it is billed until removed; remove it by hand (the next drill also removes it once older than DRILL_TIMEOUT)")
		return fmt.Errorf("the drill database %s could not be deleted (remove it with %s): %w", name, removeCommand(name, d.app), err)
	}
	rec.Deleted = true
	d.log.Info().Str("app", t.App).Str("database", t.Database).Str("addon", name).Str("held", secs(rec.HeldSeconds)).Msg("drill database deleted")
	return nil
}

// summarizeDrill logs the run's total line, with what the drills cost, and returns the exit status.
func summarizeDrill(log zerolog.Logger, results []archive.Result, drills []*archive.Drill, interrupted, keep bool) int {
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
	ev := log.Info()
	if failed > 0 || interrupted {
		ev = log.Error()
	}
	msg := "drill finished"
	switch {
	case interrupted:
		msg = "drill interrupted"
	case failed > 0:
		msg = "drill finished with failures"
	}
	costNote := fmt.Sprintf("%d drill database(s) held %s in all: about $%.4f at list price (plan price per month, pro rata)", len(drills), secs(held), cost)
	if keep && len(drills) > 0 {
		costNote += ", and the kept ones are billed until removed"
	}
	ev.Int("targets", len(results)).Int("passed", len(results)-failed).Int("failed", failed).
		Str("cost_usd", fmt.Sprintf("%.4f", cost)).Str("cost", costNote).Msg(msg)
	if failed > 0 || interrupted {
		return ExitFailed
	}
	return ExitOK
}
