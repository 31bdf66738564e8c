package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/drill"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/verify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// drillTiming shortens the drill's waits for Heroku in tests; zero in production (drill's defaults).
var drillTiming drill.Timing

var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)

// drillApp is the pgoffsite app's name, from dyno metadata: the drill's add-ons are made there.
func drillApp(app string) (string, error) {
	switch {
	case app == "":
		return "", errors.New("  HEROKU_APP_NAME: not set: pgoffsite drill provisions its throwaway database on the pgoffsite app, which dyno metadata names: run `heroku labs:enable runtime-dyno-metadata -a APP` (APP: the pgoffsite app) and deploy again, or set HEROKU_APP_NAME to the app's name")
	case !appNameRE.MatchString(app):
		return "", fmt.Errorf("  HEROKU_APP_NAME: %q is not a Heroku app name: set it to the pgoffsite app's name (dyno metadata sets it: heroku labs:enable runtime-dyno-metadata -a APP)", app)
	}
	return app, nil
}

// runDrill is `pgoffsite drill`: for each target's newest archive, a restore drill into a
// throwaway Heroku Postgres add-on on the pgoffsite app, which is always deleted afterwards.
func runDrill(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "leave each drill's database for a person to inspect (billed until removed; the log says how)")
	identity := fs.String("identity", "", "age identity file that decrypts encrypted archives (.dump.age); default: the text of AGE_IDENTITY")
	dest := fs.String("destination", "", "drill the copies at this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgoffsite drill takes no arguments (got %q): targets come from BACKUP_TARGETS\n", fs.Args())
		return ExitUsage
	}
	cfg, err := config.LoadFor("drill")
	ids, idSecrets, idErr := loadIdentities(*identity, cfg.AgeIdentity)
	var app string
	var appErr error
	if err == nil {
		var a spec.Archive
		if a, err = pickReadDestination(cfg, *dest); err != nil {
			err = fmt.Errorf("  --destination: %w", err)
		}
		cfg.Archive = a
		app, appErr = drillApp(cfg.AppName)
	}
	if err := errors.Join(withIdentityProblem(err, idErr, idSecrets), appErr); err != nil {
		return badConfig(stderr, err)
	}
	red := newRedactor(cfg, idSecrets...)
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red)
	notifier, err := newNotifier(cfg, idSecrets...)
	if err != nil {
		log.Error().Err(err).Msg("cannot set up notifications")
		return ExitUsage
	}
	src, err := openSource(ctx, cfg)
	if err != nil {
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot open the archive")
		return ExitFailed
	}
	log.Info().Str("version", version.Version).Str("pgoffsite_app", app).Str("plan", cfg.Drill.Plan.Name).
		Int("targets", len(cfg.Targets)).Int("checks", len(cfg.Drill.Checks)).Str("timeout", cfg.Drill.Timeout.String()).Msg("drill run started")
	started := time.Now()
	if err := notifier.Start(ctx); err != nil {
		log.Warn().Err(err).Msg("heartbeat start ping failed (the drill goes on)")
	}
	targets := make([]archive.Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		targets[i] = archive.Target{App: t.App, Database: t.Database, Env: t.Env}
	}
	deps := drill.Deps{
		API: heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL,
			UserAgent: version.UserAgent(), RetryBudget: herokuRetryBudget}),
		Source: src, Database: drill.Postgres{}, Log: log, Redactor: red,
		Record: func(ctx context.Context, key string, v verify.Result, rec *archive.Drill) {
			recordVerification(ctx, log, red, src, key, v, rec)
		},
	}
	results, err := drill.Run(ctx, deps, drill.Options{Targets: targets, App: app, Plan: cfg.Drill.Plan, Checks: cfg.Drill.Checks,
		Timeout: cfg.Drill.Timeout, Keep: *keep, Identities: ids, Timing: drillTiming})
	code := ExitOK
	if err != nil {
		code = ExitFailed // the log says which drill failed, and why
	}
	notifyFinish(ctx, log, notifier, "drill", started, results)
	return code
}
