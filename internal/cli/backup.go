package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/backupsource"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/forksource"
	"github.com/pgoffsite/pgoffsite/internal/progress"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// backupOptions are the options of `pgoffsite backup` and `pgoffsite bundle`.
type backupOptions struct {
	// Target is --target APP:DATABASE: the one target instead of BACKUP_TARGETS (how a
	// coordinator starts its children, and handy by hand).
	Target string
	// BundleOnly is `pgoffsite bundle`: the app bundles of BACKUP_TARGETS' apps alone.
	BundleOnly bool
}

func newBackupCmd(f *Factory) *cobra.Command {
	o := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "backup [--target APP:DATABASE]",
		Short: "capture (or take the newest) backup of each target and archive it",
		Long: "Capture (or take the newest) Heroku backup of each target of BACKUP_TARGETS, or pg_dump it, and archive it at\n" +
			"every destination of ARCHIVE_URL, checked while it streams; --target archives that one target instead.",
		Example: "  heroku run -x -a my-pgoffsite pgoffsite backup   # -x: the exit status reaches the script\n  pgoffsite backup --target shop-prod:DATABASE_URL",
		Args:    noArgs("targets come from BACKUP_TARGETS, or one from --target APP:DATABASE"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("target") && strings.TrimSpace(o.Target) == "" {
				return usageErr(cmd, "--target needs a target, APP:DATABASE")
			}
			return runArchive(cmd.Context(), f, o)
		},
	}
	cmd.Flags().StringVar(&o.Target, "target", "", "archive this one target (`APP:DATABASE`) instead of BACKUP_TARGETS")
	return cmd
}

func newBundleCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "bundle",
		Short: "archive each target app's current release (slug, release.json, encrypted config)",
		Long: "Archive each target app's current release: slug, release.json, and its config values encrypted to\n" +
			"ARCHIVE_RECIPIENTS, signed with BUNDLE_SIGNING_KEY (BACKUP_APP_BUNDLE=true makes backup do it too).",
		Example: "  heroku run -x -a my-pgoffsite pgoffsite bundle   # -x: the exit status reaches the script",
		Args:    noArgs("apps come from BACKUP_TARGETS"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runArchive(cmd.Context(), f, &backupOptions{BundleOnly: true})
		},
	}
}

// runArchive is `pgoffsite backup` and, with BundleOnly, `pgoffsite bundle`.
func runArchive(ctx context.Context, f *Factory, o *backupOptions) error {
	command := "backup"
	if o.BundleOnly {
		command = "bundle" // it reports as itself, to its own heartbeat
	}
	// No logger before the configuration is read, on purpose: nothing has been contacted.
	cfg, err := f.configure(loadBackup(o.Target))
	if err != nil {
		return err
	}
	fanout := cfg.Fanout > 0 && o.Target == "" && !o.BundleOnly
	if fanout {
		if _, err := fanoutApp(cfg.AppName); err != nil {
			return badConfig(err)
		}
	}
	red, log := f.Redactor(), f.Logger()
	if cfg.Child {
		ctx = watchUploads(ctx, f.Stderr, red)
	}
	if n := cfg.RuntimeMemoryLimit(); n > 0 && f.LimitMemory {
		debug.SetMemoryLimit(n) // ARCHIVE_MEMORY_LIMIT is the run's budget
	}

	notifier, err := f.Notifier(command)
	if err != nil {
		return err
	}
	opened := f.Destinations(ctx)
	if opened.N == 0 {
		// Nowhere to write: taking backups (a capture costs the database) would be for nothing.
		err := fmt.Errorf("no destination could be opened (%s)", strings.Join(dest.Names(cfg.Archives), " "))
		report.Finish(ctx, log, notifier, command, f.Now(), []archive.Result{{Target: archive.Target{App: "*", Database: "*"}, Err: err}})
		log.Error().Err(err).Msg("backup run finished with failures")
		return exitWith(ExitFailed)
	}
	job, err := newJob(cfg, f, opened.Destinations)
	if err != nil {
		return err
	}
	targets := archiveTargets(cfg)
	logStart(log, cfg, command, fanout, job.Encrypt)
	started := f.begin(ctx, notifier, "the backup")
	var results []archive.Result
	switch {
	case fanout:
		results = coordinate(ctx, log, cfg, f.Heroku(), f.Coordinator, opened.Caps, targets)
	case !o.BundleOnly:
		results = job.Run(ctx, targets)
	}
	if o.BundleOnly || cfg.AppBundle {
		results = append(results, newBundler(cfg, f.Heroku(), job, red, log).Apps(ctx, targets)...)
	}
	opened.WarnReplaceable(log)
	ok := report.Backup(log, results, ctx.Err() != nil)
	report.Finish(ctx, log, notifier, command, started, results)
	if cfg.Child {
		childResults(ctx, f.Stderr, red, results)
	}
	return failedUnless(ok)
}

// archiveTargets are BACKUP_TARGETS as the archive job, verify and drills name them.
func archiveTargets(cfg config.Config) []archive.Target {
	targets := make([]archive.Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		targets[i] = archive.Target{App: t.App, Database: t.Database, Env: t.Env}
	}
	return targets
}

// failedUnless is a run's exit: ExitFailed unless every target succeeded.
func failedUnless(ok bool) error {
	if ok {
		return nil
	}
	return exitWith(ExitFailed)
}

// loadBackup loads the configuration of a backup or bundle run: the one target of --target is
// the run's BACKUP_TARGETS, read and checked as such.
func loadBackup(target string) func() (config.Config, error) {
	return func() (config.Config, error) {
		cfg, err := config.Load(config.WithTargets(target))
		if cfg.Child {
			// A coordinator's child: the coordinator reports the run, spreads it and archives the
			// app bundles (once per app), not the child.
			cfg.HeartbeatURL, cfg.WebhookURL, cfg.Fanout, cfg.AppBundle = "", "", 0, false
		}
		return cfg, err
	}
}

// newJob is the archive job of a backup or bundle run, writing to dests.
func newJob(cfg config.Config, f *Factory, dests []archive.Destination) (*archive.Job, error) {
	job := &archive.Job{
		Source:       newSource(cfg, f),
		Destinations: dests,
		Version:      version.Version,
		Log:          f.Logger(),
		Check:        cfg.Check,
		Parallel:     cfg.Parallel, // config sized the buffers for a share of ARCHIVE_MEMORY_LIMIT
		// RETENTION: each archive's class, from the markers of the first destination that answers.
		Retention:     cfg.Retention,
		RetentionZone: cfg.RetentionZone,
	}
	if cfg.Recipients != "" {
		// Checked by config.Load already: an error here cannot happen, but is not ignored.
		recips, err := agecrypt.ParseRecipients(cfg.Recipients)
		if err != nil {
			return nil, badConfig(err)
		}
		job.Encrypt = recips
	}
	if tty, ok := f.Stderr.(*os.File); ok && isatty.IsTerminal(tty.Fd()) {
		job.Progress = progress.NewLine(f.Stderr) // `heroku run` gives a terminal: show a live progress line
	}
	return job, nil
}

// newSource is where the run's backups come from (internal/backupsource).
func newSource(cfg config.Config, f *Factory) archive.Source {
	var fork *forksource.Source
	if cfg.Method == config.MethodFork {
		timing := f.ForkTiming
		timing.Pace = f.Heroku().Pace // polls slow down when the account's API budget runs low
		fork = &forksource.Source{API: f.Heroku(), App: cfg.AppName, Plan: cfg.Fork.Plan, Timeout: cfg.Fork.Timeout, Redactor: f.Redactor(), Timing: timing}
	}
	return backupsource.New(backupsource.Options{Heroku: f.Heroku(), PgDump: cfg.Method == config.MethodPgDump, Fork: fork,
		EnvURLs: cfg.EnvURLs(), PgDumpPath: cfg.PgDumpPath, Silence: f.DumpSilence, Secrets: secrets(cfg),
		PgDumpJobs: cfg.PgDumpJobs, PgDumpExcludeTableData: cfg.PgDumpExcludeTableData, PgDumpExcludeSchema: cfg.PgDumpExcludeSchema,
		PgDumpCompress: cfg.PgDumpCompress, Mode: cfg.Mode, MaxAge: cfg.MaxAge, CaptureTimeout: cfg.CaptureTimeout, Concurrency: cfg.Concurrency})
}
