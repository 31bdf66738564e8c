package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/coordinator"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// childVar marks the environment of a dyno a coordinator started: such a run archives its one
// target, sends no heartbeat and no webhook (the coordinator sends the run's), never fans out,
// and ends with its result line (coordinator.ResultMessage).
const childVar = "PGOFFSITE_CHILD"

func isChild() bool { return os.Getenv(childVar) == "1" }

// dynoTTL is a child dyno's time to live: the capture's timeout and as long again for the
// transfer, within Heroku's 24 hours.
func dynoTTL(cfg config.Config) time.Duration {
	return min(24*time.Hour, 2*cfg.CaptureTimeout)
}

// dynoTTLFix says, for a child stopped at its time to live, what set it and how to give more.
func dynoTTLFix(cfg config.Config) string {
	if dynoTTL(cfg) < 24*time.Hour {
		return fmt.Sprintf("the time to live is twice BACKUP_CAPTURE_TIMEOUT (%s): raise BACKUP_CAPTURE_TIMEOUT to give each target more time, up to 12h (a one-off dyno lives at most 24 h)", cfg.CaptureTimeout)
	}
	return fmt.Sprintf("the time to live is twice BACKUP_CAPTURE_TIMEOUT (%s), capped at 24 h, the longest Heroku lets a one-off dyno live: the archive takes longer than a dyno can run; the log's rates say whether the download or the upload is slow", cfg.CaptureTimeout)
}

// coordinate archives the targets in one-off dynos of this app (BACKUP_FANOUT); timing, when
// set, adjusts the coordinator's waits.
func coordinate(ctx context.Context, log zerolog.Logger, cfg config.Config, hk *heroku.Client, timing func(*coordinator.Coordinator), dests []archive.Destination, targets []archive.Target) []archive.Result {
	c := &coordinator.Coordinator{
		API:     hk,
		App:     os.Getenv("HEROKU_APP_NAME"),
		Command: func(t archive.Target) string { return "pgoffsite backup --target " + t.String() },
		Size:    cfg.DynoSize,
		TTL:     dynoTTL(cfg),
		TTLFix:  dynoTTLFix(cfg),
		Env:     map[string]string{childVar: "1"},
		N:       cfg.Fanout,
		Log:     log,
	}
	for _, d := range dests {
		if a, ok := d.Store.(coordinator.Aborter); ok {
			c.Abort = append(c.Abort, a)
		}
	}
	if timing != nil {
		timing(c)
	}
	return c.Run(ctx, targets)
}

// fanoutApp is the coordinator's own app, from dyno metadata; "" with the fix when missing.
func fanoutApp() (string, error) {
	if app := strings.TrimSpace(os.Getenv("HEROKU_APP_NAME")); app != "" {
		return app, nil
	}
	return "", fmt.Errorf("  BACKUP_FANOUT: the run needs its own app's name to start dynos, and HEROKU_APP_NAME is not set — enable dyno metadata with `heroku labs:enable runtime-dyno-metadata -a APP` (the next run has it), or set BACKUP_FANOUT=0")
}

// childResult writes a child's result line, the last it writes: what its coordinator reads. It
// is written at info even under LOG_LEVEL=warn or error, which must never hide it.
func childResult(log zerolog.Logger, r archive.Result) {
	status := "archived"
	switch {
	case r.Err != nil:
		status = "failed"
	case r.AlreadyArchived:
		status = "already archived"
	}
	log = log.Level(min(log.GetLevel(), zerolog.InfoLevel))
	ev := log.Info().Str("app", r.Target.App).Str("database", r.Target.Database).Str("status", status).
		Str("backup", r.Backup).Int64("bytes", r.Bytes).Str("location", r.Location)
	if r.Err != nil {
		ev = ev.Str("error", r.Err.Error())
	}
	ev.Msg(coordinator.ResultMessage)
}
