// Package report turns the per-target results of a run (backup, bundle, verify, status, drill)
// into what people and monitors see: one summary line per target, a total line, and the
// notification sent to the heartbeat and the webhook.
package report

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// Backup logs one line per target and a total line for a backup (or bundle) run, and says
// whether the run succeeded: no target failed and the run was not interrupted.
func Backup(log zerolog.Logger, results []archive.Result, interrupted bool) bool {
	failed := 0
	var bytes int64
	for _, r := range results {
		if r.Err != nil {
			failed++
			Failed(log, r)
			continue
		}
		bytes += r.Bytes
		status := "archived"
		if r.AlreadyArchived {
			status = "already archived"
		}
		ev := log.Info().Str("app", r.Target.App).Str("database", r.Target.Database).Str("backup", r.Backup).
			Int64("bytes", r.Bytes).Str("duration", r.Duration.Round(time.Millisecond).String()).Str("location", r.Location)
		if len(r.Copies) > 1 {
			ev = ev.Strs("copies_stored", StoredCopies(r))
		}
		if r.PartlyChecked() {
			status += ", partly checked for framing only"
			ev = ev.Strs("framing_only_tables", r.FramingOnly).Int("framing_only_other", r.OtherFramingOnly).
				Str("decompressed", r.Decompressed).
				Str("hint", "this data was not decompressed: pgoffsite verify checks it (ARCHIVE_CHECK=full would have, at the cost of speed)")
		}
		ev.Msg("summary: " + status)
	}
	ev := Total(log, failed, interrupted).Int("targets", len(results)).Int("archived", len(results)-failed).
		Int("failed", failed).Int64("bytes", bytes)
	switch {
	case interrupted:
		ev.Msg("backup run interrupted")
	case failed > 0:
		ev.Msg("backup run finished with failures")
	default:
		ev.Msg("backup run finished")
	}
	return failed == 0 && !interrupted
}

// Verify logs the failed archives of a verification and a total line, and says whether the
// verification succeeded (each verified archive has logged its own line already).
func Verify(log zerolog.Logger, results []archive.Result, interrupted bool) bool {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			Failed(log, r)
		}
	}
	Total(log, failed, interrupted).Int("archives", len(results)).Int("failed", failed).Msg("verify finished")
	return failed == 0 && !interrupted
}

// Failed logs the summary line of a target that failed, with the copies that were made and
// those that were not, so that nobody restores from the one that is missing.
func Failed(log zerolog.Logger, r archive.Result) {
	ev := log.Error().Str("app", r.Target.App).Str("database", r.Target.Database).Str("backup", r.Backup).
		Str("duration", r.Duration.Round(time.Millisecond).String())
	if r.Location != "" && len(r.Copies) == 0 {
		ev = ev.Str("location", r.Location) // the archive verified or drilled
	}
	if stored := StoredCopies(r); len(stored) > 0 {
		ev = ev.Strs("copies_stored", stored).Strs("copies_failed", FailedCopies(r))
	}
	ev.Err(r.Err).Msg("summary: FAILED")
}

// Total starts a run's total line: an error when anything failed or the run was cut.
func Total(log zerolog.Logger, failed int, interrupted bool) *zerolog.Event {
	if failed > 0 || interrupted {
		return log.Error()
	}
	return log.Info()
}

// StoredCopies names the locations where the target's archive now is.
func StoredCopies(r archive.Result) []string {
	var out []string
	for _, c := range r.Copies {
		if c.Err == nil {
			out = append(out, c.Location)
		}
	}
	return out
}

// FailedCopies names the destinations where it is not.
func FailedCopies(r archive.Result) []string {
	var out []string
	for _, c := range r.Copies {
		if c.Err != nil {
			out = append(out, c.Destination)
		}
	}
	return out
}

// Notification is what the monitor and the webhook are told of a run.
func Notification(command string, started time.Time, interrupted bool, results []archive.Result) notify.Run {
	run := notify.Run{Command: command, Started: started, Finished: time.Now(), Interrupted: interrupted, Version: version.Version}
	for _, r := range results {
		tr := notify.TargetResult{App: r.Target.App, Database: r.Target.Database, Backup: r.Backup, Bytes: r.Bytes,
			Duration: r.Duration, Location: r.Location, AlreadyArchived: r.AlreadyArchived,
			FramingOnly: r.FramingOnly, OtherFramingOnly: r.OtherFramingOnly}
		if r.Err != nil {
			tr.Error = r.Err.Error()
		}
		for _, c := range r.Copies {
			nc := notify.Copy{Destination: c.Destination, Location: c.Location, Status: c.Status()}
			if c.Err != nil {
				nc.Error, nc.Location = c.Err.Error(), ""
			}
			tr.Copies = append(tr.Copies, nc)
		}
		run.Results = append(run.Results, tr)
	}
	return run
}

// Finish reports the run to the monitor and the webhook. It runs even after a SIGTERM (that is
// when a report matters most), within its own short bound, and never changes the result.
func Finish(ctx context.Context, log zerolog.Logger, n *notify.Notifier, command string, started time.Time, results []archive.Result) {
	run := Notification(command, started, ctx.Err() != nil, results)
	bound := 25 * time.Second
	if run.Interrupted {
		bound = 8 * time.Second // SIGKILL follows SIGTERM after 30 s, and the abort came first
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	defer cancel()
	if err := n.Finish(nctx, run); err != nil {
		log.Warn().Err(err).Msg("notification failed (the run's result is unchanged)")
	}
}
