package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/coordinator"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/openuploads"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// coordinatorTiming shortens the coordinator's waits in tests; nil in production.
var coordinatorTiming func(*coordinator.Coordinator)

// backupArgs reads `pgoffsite backup [--target APP:DATABASE]`: the one target overrides
// BACKUP_TARGETS (how a coordinator starts its children, and handy by hand).
func backupArgs(args []string, stderr io.Writer) (target string, ok bool) {
	switch {
	case len(args) == 0:
		return "", true
	case len(args) == 2 && args[0] == "--target" && strings.TrimSpace(args[1]) != "":
		return args[1], true
	case len(args) == 1 && strings.HasPrefix(args[0], "--target=") && len(args[0]) > len("--target="):
		return strings.TrimPrefix(args[0], "--target="), true
	}
	fmt.Fprintf(stderr, "pgoffsite backup takes no arguments but --target APP:DATABASE (got %q): targets come from BACKUP_TARGETS\n", args)
	return "", false
}

// coordinate archives the targets in one-off dynos of this app (BACKUP_FANOUT).
func coordinate(ctx context.Context, log zerolog.Logger, cfg config.Config, caps []store.Caps, targets []archive.Target) []archive.Result {
	hk := heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL,
		UserAgent: version.UserAgent(), RetryBudget: herokuRetryBudget})
	c := &coordinator.Coordinator{
		API:     hk,
		App:     cfg.AppName,
		Command: func(t archive.Target) string { return "pgoffsite backup --target " + t.String() },
		Size:    cfg.DynoSize,
		TTL:     coordinator.TimeToLive(cfg.CaptureTimeout),
		TTLFix:  coordinator.TimeToLiveFix(cfg.CaptureTimeout),
		Env:     map[string]string{config.ChildVar: "1"},
		N:       cfg.Fanout,
		Log:     log,
	}
	for _, d := range caps {
		if d.Abort != nil {
			c.Abort = append(c.Abort, d.Abort)
		}
	}
	if coordinatorTiming != nil {
		coordinatorTiming(c)
	}
	return c.Run(ctx, targets)
}

// fanoutApp is the coordinator's own app, from dyno metadata; "" with the fix when missing.
func fanoutApp(app string) (string, error) {
	if app != "" {
		return app, nil
	}
	return "", fmt.Errorf("  BACKUP_FANOUT: the run needs its own app's name to start dynos, and HEROKU_APP_NAME is not set — enable dyno metadata with `heroku labs:enable runtime-dyno-metadata -a APP` (the next run has it), or set BACKUP_FANOUT=0")
}

// watchUploads makes a child name each multipart upload it opens in a line for its coordinator
// (coordinator.UploadLine), which aborts the upload should the child die before it does.
func watchUploads(ctx context.Context, stderr io.Writer, red *logging.Redactor) context.Context {
	return openuploads.Watch(ctx, func(location, uploadID string) {
		red.Wrap(stderr).Write(coordinator.UploadLine(location, uploadID))
	})
}

// childResult writes a child's result line for r (coordinator.ResultLine), the last it writes:
// what its coordinator reads. It is written whatever LOG_LEVEL says.
func childResult(stderr io.Writer, red *logging.Redactor, r archive.Result) {
	red.Wrap(stderr).Write(coordinator.ResultLine(r, red.Scrub))
}
