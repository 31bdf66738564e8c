package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/coordinator"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/openuploads"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// coordinate archives the targets in one-off dynos of this app (BACKUP_FANOUT); timing, when
// set, adjusts the coordinator's waits.
func coordinate(ctx context.Context, log zerolog.Logger, cfg config.Config, hk *heroku.Client, timing func(*coordinator.Coordinator), caps []store.Caps, targets []archive.Target) []archive.Result {
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
		Rate:    hk,
		Hosts:   hk,
	}
	for _, d := range caps {
		if d.Abort != nil {
			c.Abort = append(c.Abort, d.Abort)
		}
	}
	if timing != nil {
		timing(c)
	}
	return c.Run(ctx, targets)
}

// fanoutBudget says what a fan-out run of this size spends of the account's Platform API budget.
func fanoutBudget(fanout, targets int) string {
	calls := coordinator.Calls(targets)
	minutes := (calls + coordinator.CallsPerMinute - 1) / coordinator.CallsPerMinute
	return fmt.Sprintf("fan-out: BACKUP_FANOUT=%d over %d target(s) makes about %d Platform API calls, its children's included, paced to at most %d a minute (Heroku refills an account's 4,500 at about 75 a minute): at least %d minute(s) of calls, whatever BACKUP_FANOUT is",
		fanout, targets, calls, coordinator.CallsPerMinute, minutes)
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

// childResults writes a child's result lines, the last it writes (what its coordinator reads),
// and repeats them until it exits (coordinator.Repeat): Heroku's logs can lose a line.
func childResults(ctx context.Context, stderr io.Writer, red *logging.Redactor, results []archive.Result) {
	coordinator.Repeat(ctx, func() {
		for _, r := range results {
			childResult(stderr, red, r)
		}
	})
}

// childResult writes a child's result line for r (coordinator.ResultLine), whatever LOG_LEVEL
// says.
func childResult(stderr io.Writer, red *logging.Redactor, r archive.Result) {
	red.Wrap(stderr).Write(coordinator.ResultLine(r, red.Scrub))
}
