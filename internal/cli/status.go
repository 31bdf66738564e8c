package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/status"
)

// statusBound bounds the reading of one destination: its listing and the manifests beside the
// archives. Each request has its own stall watchdog; this is the way out of a slow crawl.
const statusBound = 5 * time.Minute

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
		dests = cfg.Archives
		if c := strings.TrimSpace(opts.Destination); c != "all" && c != "" {
			a, perr := pickReadDestination(cfg, c)
			if perr != nil {
				err = fmt.Errorf("  --destination: %w", perr)
			}
			dests = []spec.Archive{a}
		}
	}
	if err == nil && opts.HTML != "" {
		if dir := filepath.Dir(opts.HTML); dir != "" {
			if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
				err = fmt.Errorf("  --html %s: the directory %s does not exist: create it or write the report elsewhere", opts.HTML, dir)
			}
		}
	}
	if err != nil {
		return badConfig(err)
	}
	red, log := f.Redactor(), f.Logger()
	notifier, err := f.Notifier()
	if err != nil {
		return err
	}
	started := f.Now()
	if err := notifier.Start(ctx); err != nil {
		log.Warn().Err(err).Msg("heartbeat start ping failed (the status check goes on)")
	}
	o := status.Options{Now: started, Zone: cfg.RetentionZone, MaxAge: cfg.MaxAge, MaxShrink: cfg.StatusMaxShrink, Days: 90}
	rep := status.Report{GeneratedAt: started.UTC(), Timezone: o.Zone.String(), MaxAge: status.Duration(cfg.MaxAge), MaxShrink: cfg.StatusMaxShrink}
	for _, a := range dests {
		rep.Targets = append(rep.Targets, statusOf(ctx, cfg, a, o)...)
	}

	// The report goes to stdout, a file and the webhook: the same scrubbing as the logs (an
	// error from the SDK can carry a request URL).
	for i := range rep.Targets {
		e := &rep.Targets[i]
		for j := range e.Problems {
			e.Problems[j] = red.Scrub(e.Problems[j])
		}
		for j := range e.Warnings {
			e.Warnings[j] = red.Scrub(e.Warnings[j])
		}
	}
	var results []archive.Result
	for _, e := range rep.Targets {
		r := archive.Result{Target: archive.Target{App: e.App, Database: e.Database}, Location: e.Destination}
		if e.Newest != nil {
			r.Backup, r.Bytes = e.Newest.Backup, e.Newest.Bytes
		}
		if !e.OK() {
			r.Err = errors.New(strings.Join(e.Problems, "; "))
			log.Error().Str("app", e.App).Str("database", e.Database).Str("destination", e.Destination).Str("backup", r.Backup).
				Err(r.Err).Msg("status: PROBLEM")
		}
		results = append(results, r)
	}
	code := ExitOK
	if !rep.OK() || ctx.Err() != nil {
		code = ExitFailed
	}
	if err := writeStatus(f.Stdout, opts.JSON, opts.HTML, rep); err != nil {
		log.Error().Err(err).Msg("cannot write the status report")
		code = ExitFailed
	}
	ev := log.Info()
	if code != ExitOK {
		ev = log.Error()
	}
	ev.Int("entries", len(rep.Targets)).Int("problems", len(results)-healthy(results)).Msg("status finished")
	report.Finish(ctx, log, notifier, "status", started, results)
	return exitWith(code)
}

func healthy(results []archive.Result) int {
	n := 0
	for _, r := range results {
		if r.Err == nil {
			n++
		}
	}
	return n
}

func writeStatus(stdout io.Writer, asJSON bool, htmlFile string, r status.Report) error {
	var err error
	if asJSON {
		err = status.WriteJSON(stdout, r)
	} else {
		err = status.WriteText(stdout, r)
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if htmlFile == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(htmlFile), ".pgoffsite-status-*.html")
	if err != nil {
		return fmt.Errorf("write the HTML report %s: %w", htmlFile, err)
	}
	err = status.WriteHTML(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), htmlFile)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write the HTML report %s: %w", htmlFile, err)
	}
	return nil
}

// statusOf reports every target at destination a; a destination that cannot be opened makes
// each of its entries a problem, and the others go on.
func statusOf(ctx context.Context, cfg config.Config, a spec.Archive, o status.Options) []status.Entry {
	ctx, cancel := context.WithTimeout(ctx, statusBound)
	defer cancel()
	cfg.Archive = a
	src, err := openSource(ctx, cfg)
	if err == nil {
		defer src.Close()
	}
	var entries []status.Entry
	for _, t := range cfg.Targets {
		st := status.Target{App: t.App, Database: t.Database, Env: t.Env}
		if err != nil {
			entries = append(entries, status.Entry{Target: st.String(), App: t.App, Database: t.Database, Destination: a.String(),
				Retention: map[string]int{}, Warnings: []string{},
				Problems: []string{fmt.Sprintf("cannot open %s: %v", a, err)}})
			continue
		}
		entries = append(entries, status.Build(ctx, src, a.String(), st, o))
	}
	return entries
}
