package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/drill"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/verify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// drillOptions are the options of `pgoffsite drill`.
type drillOptions struct {
	Keep                  bool
	Identity, Destination string
	Jobs                  int
}

func newDrillCmd(f *Factory) *cobra.Command {
	o := &drillOptions{}
	cmd := &cobra.Command{
		Use:   "drill [--keep] [--identity FILE] [--destination N]",
		Short: "restore each target's newest archive into a throwaway Heroku Postgres add-on and check it",
		Long: "Restore each target's newest archive into a throwaway Heroku Postgres add-on (DRILL_PLAN) on the pgoffsite\n" +
			"app, compare row counts, run DRILL_CHECKS, and delete the add-on; needs HEROKU_APP_NAME (dyno metadata).",
		Example: "  heroku run -x -a my-pgoffsite pgoffsite drill   # -x: the exit status reaches the script\n  pgoffsite drill --keep --destination 2",
		Args:    noArgs("targets come from BACKUP_TARGETS"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDrill(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Keep, "keep", false, "leave each drill's database for a person to inspect (billed until removed; the log says how)")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts encrypted archives (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "drill the copies at this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	fs.IntVar(&o.Jobs, "jobs", 1, "restore a set (PG_DUMP_JOBS) in this many sessions at once; an archive of one stream restores in one")
	return cmd
}

// runDrill is `pgoffsite drill`: for each target's newest archive, a restore drill into a
// throwaway Heroku Postgres add-on on the pgoffsite app, which is always deleted afterwards.
func runDrill(ctx context.Context, f *Factory, o *drillOptions) error {
	if err := checkJobs(o.Jobs, ""); err != nil {
		return badUsage("pgoffsite drill: %v", err)
	}
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "drill") }
	cfg, err := f.Config()
	ids, idSecrets, idErr := loadIdentities(o.Identity, cfg.AgeIdentity)
	var app string
	var appErr error
	if err == nil {
		app, appErr = drill.App(cfg.AppName)
	}
	if err := errors.Join(withIdentityProblem(err, idErr, idSecrets), appErr); err != nil {
		return badConfig(err)
	}
	f.AddSecrets(idSecrets...)
	red, log := f.Redactor(), f.Logger()
	notifier, err := f.Notifier("drill")
	if err != nil {
		return err
	}
	src, err := f.readSource(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info().Str("version", version.Version).Str("pgoffsite_app", app).Str("plan", cfg.Drill.Plan.Name).
		Int("targets", len(cfg.Targets)).Int("checks", len(cfg.Drill.Checks)).Str("timeout", cfg.Drill.Timeout.String()).Msg("drill run started")
	started := f.begin(ctx, notifier, "the drill")
	targets := archiveTargets(cfg)
	deps := drill.Deps{
		API:    f.Heroku(),
		Source: src, Database: drill.Postgres{}, Log: log, Redactor: red,
		Record: func(ctx context.Context, key string, v verify.Result, rec *catalog.Drill) {
			verify.Record(ctx, verifyDeps(cfg, src, log, red), key, v, rec)
		},
	}
	results, err := drill.Run(ctx, deps, drill.Options{Targets: targets, App: app, Plan: cfg.Drill.Plan, Checks: cfg.Drill.Checks,
		Timeout: cfg.Drill.Timeout, Keep: o.Keep, Identities: ids, Timing: f.DrillTiming, Jobs: o.Jobs})
	code := ExitOK
	if err != nil {
		code = ExitFailed // the log says which drill failed, and why
	}
	report.Finish(ctx, log, notifier, "drill", started, results)
	return exitWith(code)
}
