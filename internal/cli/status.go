package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/status"
)

// statusOptions are the options of `pgoffsite status`.
type statusOptions struct {
	JSON        bool
	HTML        string
	Destination string
}

func newStatusCmd(f *Factory) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [--json] [--html FILE] [--destination N|all]",
		Short: "with read credentials: each target's newest archive, the last 30 days, at every destination",
		Long: "With read credentials: each target's newest archive, the last 30 days, sizes and verifications at every\n" +
			"destination. A watchdog: exit status 1 when a newest archive is older than BACKUP_MAX_AGE or shrank more\n" +
			"than STATUS_MAX_SHRINK from the week's median. It reports like a backup run (heartbeat, webhook).",
		Example: "  pgoffsite status\n  pgoffsite status --json --destination 2\n  pgoffsite status --html /tmp/status.html",
		Args:    noArgs("targets come from BACKUP_TARGETS"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&o.HTML, "html", "", "also write a self-contained HTML report (90-day calendars, size charts) to this file")
	fs.StringVar(&o.Destination, "destination", "all", "report this destination of ARCHIVE_URL (its number, 1-based, or its URL), or all")
	return cmd
}

// runStatus is `pgoffsite status`: with read credentials (as verify), report each target at
// each destination from the bucket's side, and act as a watchdog: exit 1 when a target's newest
// archive is older than BACKUP_MAX_AGE or shrank more than STATUS_MAX_SHRINK from the week's
// median. It reports like the other commands (heartbeat, webhook).
func runStatus(ctx context.Context, f *Factory, opts *statusOptions) error {
	f.load = func() (config.Config, error) { return config.LoadFor("status") }
	cfg, err := f.Config()
	var dests []spec.Archive
	if err == nil {
		if dests, err = dest.PickAll(cfg.Archives, opts.Destination); err != nil {
			err = fmt.Errorf("  --destination: %w", err)
		}
	}
	if err == nil && opts.HTML != "" {
		if herr := status.CheckHTMLFile(opts.HTML); herr != nil {
			err = fmt.Errorf("  --html %s: %w", opts.HTML, herr)
		}
	}
	if err != nil {
		return badConfig(err)
	}
	red, log := f.Redactor(), f.Logger()
	notifier, err := f.Notifier("status")
	if err != nil {
		return err
	}
	started := f.begin(ctx, notifier, "the status check")
	o := status.Options{Now: started, Zone: cfg.RetentionZone, MaxAge: cfg.MaxAge, MaxShrink: cfg.StatusMaxShrink, Days: 90}
	rep := status.Gather(ctx, statusSources(cfg, dests), statusTargets(cfg), o)
	rep.Scrub(red.Scrub)
	results, problems := report.Status(log, rep)
	code := ExitOK
	if !rep.OK() || ctx.Err() != nil {
		code = ExitFailed
	}
	if err := status.Write(f.Stdout, opts.JSON, opts.HTML, rep); err != nil {
		log.Error().Err(err).Msg("cannot write the status report")
		code = ExitFailed
	}
	ev := log.Info()
	if code != ExitOK {
		ev = log.Error()
	}
	ev.Int("entries", len(rep.Targets)).Int("problems", problems).Msg("status finished")
	report.Finish(ctx, log, notifier, "status", started, results)
	return exitWith(code)
}

// statusTargets are BACKUP_TARGETS as status names them.
func statusTargets(cfg config.Config) []status.Target {
	targets := make([]status.Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		targets[i] = status.Target{App: t.App, Database: t.Database, Env: t.Env}
	}
	return targets
}

// statusSources open each destination of dests for reading, when status comes to it.
func statusSources(cfg config.Config, dests []spec.Archive) []status.Destination {
	var sources []status.Destination
	for _, a := range dests {
		sources = append(sources, status.Destination{Name: a.String(), Open: func(ctx context.Context) (status.Source, func() error, error) {
			src, err := dest.OpenSource(ctx, cfg.Env(), a)
			if err != nil {
				return nil, nil, err
			}
			return src, src.Close, nil
		}})
	}
	return sources
}
