package herokusim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// dataTime is the Data API's timestamp layout.
const dataTime = "2006-01-02 15:04:05 -0700"

type logLine struct {
	at          time.Time
	level, text string
}

type transfer struct {
	uuid      string
	num       int
	addon     *addon
	fromName  string
	created   time.Time
	started   time.Time
	updated   time.Time
	finished_ time.Time
	canceled  time.Time
	deleted   time.Time
	succeeded *bool
	processed int64
	source    *int64
	logs      []logLine
	path      string
	cancel    context.CancelFunc
}

func (t *transfer) finished() bool { return !t.finished_.IsZero() }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(dataTime)
}

// json is the transfer as the Data API writes it: every field, nulls explicit.
func (t *transfer) json(verbose bool) map[string]any {
	var succeeded any
	if t.succeeded != nil {
		succeeded = *t.succeeded
	}
	var source any
	if t.source != nil {
		source = *t.source
	}
	m := map[string]any{
		"uuid": t.uuid, "num": t.num,
		"from_name": t.fromName, "from_type": "pg_dump", "from_url": t.addon.dsn,
		"to_name": "BACKUP", "to_type": "gof3r",
		"to_url":  fmt.Sprintf("https://xfrtu.s3.amazonaws.com/%s/%s/backup.dump", t.addon.id, t.uuid),
		"options": map[string]any{}, "source_bytes": source, "processed_bytes": t.processed,
		"succeeded": succeeded, "warnings": 0, "num_keep": 2,
		"created_at": nullTime(t.created), "started_at": nullTime(t.started), "updated_at": nullTime(t.updated),
		"finished_at": nullTime(t.finished_), "canceled_at": nullTime(t.canceled), "deleted_at": nullTime(t.deleted),
		"purged_at": nil,
	}
	if verbose {
		logs := []any{}
		for _, l := range t.logs {
			logs = append(logs, map[string]any{"created_at": l.at.UTC().Format(dataTime), "level": l.level, "message": l.text})
		}
		m["logs"] = logs
	}
	return m
}

// newTransferLocked creates a backup transfer of ad; numbers are per billing app.
func (s *Sim) newTransferLocked(ad *addon) *transfer {
	app := ad.app.name
	s.nums[app]++
	from := "DATABASE"
	for _, a := range s.atts {
		if a.addon == ad && a.app == ad.app {
			from = a.name
			break
		}
	}
	t := &transfer{uuid: newID(), num: s.nums[app], addon: ad, fromName: from, created: s.o.Now().UTC()}
	s.transfers[app] = append(s.transfers[app], t)
	return t
}

// capture starts a backup: a real pg_dump of the add-on's database, in the background.
func (s *Sim) capture(ad *addon) *transfer {
	s.mu.Lock()
	t := s.newTransferLocked(ad)
	view := *t
	fail, failLine := s.faults.takeCaptureFailure()
	extra := s.faults.captureSlowness()
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		begin := s.o.Now()
		s.update(t, func() { t.started, t.updated = begin.UTC(), begin.UTC() })
		path := filepath.Join(s.o.DumpDir, fmt.Sprintf("%s-%03d-%s.dump", ad.app.name, t.num, t.uuid[:8]))
		var ok bool
		var lines []string
		if fail {
			lines = []string{failLine}
		} else {
			cmd := exec.CommandContext(ctx, s.o.PgDump, "-Fc", "--no-owner", "--no-acl", "-d", ad.dsn, "-f", path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ok = err == nil
			for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
			if err != nil && len(lines) == 0 {
				lines = []string{"pg_dump: error: " + err.Error()}
			}
		}
		// Stay running at least CaptureDelay (plus any injected slowness), as real captures do.
		wait := time.Until(begin.Add(s.o.CaptureDelay + extra))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		now := s.o.Now().UTC()
		s.update(t, func() {
			t.updated = now
			if ctx.Err() != nil && t.finished_.IsZero() {
				f := false
				t.canceled, t.finished_, t.succeeded = now, now, &f
				t.logs = append(t.logs, logLine{now, "error", "backup canceled"})
				return
			}
			t.finished_ = now
			t.succeeded = &ok
			if ok {
				if fi, err := os.Stat(path); err == nil {
					size := fi.Size()
					t.processed, t.source, t.path = size, &size, path
				}
				t.logs = append(t.logs, logLine{now, "info", "backup done"})
				s.retireLocked(t)
			} else {
				for _, l := range lines {
					t.logs = append(t.logs, logLine{now, "error", l})
				}
			}
		})
	}()
	return &view
}

func (s *Sim) update(t *transfer, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// retireLocked marks successful manual backups beyond num_keep (2) deleted, like Heroku's
// retention of manual backups. Files stay on disk for the tests that compare bytes.
func (s *Sim) retireLocked(latest *transfer) {
	kept := 0
	ts := s.transfers[latest.addon.app.name]
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		if t.addon != latest.addon || t.succeeded == nil || !*t.succeeded || !t.deleted.IsZero() {
			continue
		}
		if kept++; kept > 2 {
			t.deleted = latest.finished_
		}
	}
}
