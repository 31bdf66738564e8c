package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/preflight"
)

// checker prints the preflight's findings, one line each, and counts failures.
type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) OK(format string, a ...any)   { fmt.Fprintf(c.w, "ok    "+format+"\n", a...) }
func (c *checker) Warn(format string, a ...any) { fmt.Fprintf(c.w, "warn  "+format+"\n", a...) }
func (c *checker) Fix(format string, a ...any)  { fmt.Fprintf(c.w, "      fix: "+format+"\n", a...) }
func (c *checker) Fail(format string, a ...any) {
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
		Long: "Preflight, run once after setting up (heroku run -x pgoffsite check): the API key, each target and its newest\n" +
			"backup, each destination writable the way a backup writes, the notification endpoints; each line says\n" +
			"what to fix. Exit status 1 when a check failed (passed on by heroku run -x only).",
		Example: "  heroku run -x -a my-pgoffsite pgoffsite check   # -x: the exit status reaches the script",
		Args:    noArgs("it checks the configuration in the environment"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), f)
		},
	}
}

// runCheck is `pgoffsite check`: the preflight a Deploy-button user runs once
// (`heroku run -x pgoffsite check`) to learn whether a backup run would work, and what to fix if not.
func runCheck(ctx context.Context, f *Factory) error {
	f.capHerokuRetries(checkRetryBudget) // before the configuration, which may list BACKUP_TARGETS=all's databases
	cfg, err := f.configure(func() (config.Config, error) { return config.LoadFor("check") })
	if err != nil {
		return err
	}
	c := &checker{w: f.Redactor().Wrap(f.Stdout)}
	mode, method := cfg.HowArchived()
	how := "method " + method
	if mode != "" {
		how = "mode " + mode + ", " + how
	}
	c.OK("configuration: %d target(s), %s, archive %s", len(cfg.Targets), how, strings.Join(dest.Names(cfg.Archives), " "))
	if cfg.Fanout > 0 {
		c.OK("%s", fanoutBudget(cfg.Fanout, len(cfg.Targets)))
	}
	if cfg.Retention.Set() {
		c.OK("retention: RETENTION=%q, periods counted in %s from each backup's finish time:", cfg.Retention.String(), cfg.RetentionZone)
		for _, cp := range bucket.RetentionPlan(cfg.Retention, cfg.Bucket.TransitionDays < 0) {
			fmt.Fprintf(c.w, "        %s\n", cp)
		}
	}

	if !preflight.Targets(ctx, c, f.Heroku(), cfg, secrets(cfg)) {
		return finishCheck(c)
	}
	for i := range cfg.Archives {
		dest.Check(ctx, c, cfg.Env(), cfg.Archives, i)
	}
	preflight.Notifications(ctx, c, cfg)
	return finishCheck(c)
}

func finishCheck(c *checker) error {
	if c.failed > 0 {
		fmt.Fprintf(c.w, "%d check(s) failed\n", c.failed)
		return exitWith(ExitFailed)
	}
	fmt.Fprintln(c.w, "all checks passed")
	return nil
}
