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
	uuid       string
	num        int
	addon      *addon
	fromName   string
	schedule   *schedule // set on a scheduled backup
	numKeep    int       // how many backups of this kind Heroku keeps, as the transfer says
	created    time.Time
	started    time.Time
	updated    time.Time
	finishedAt time.Time
	canceled   time.Time
	deleted    time.Time
	succeeded  *bool
	processed  int64
	source     *int64
	logs       []logLine
	path       string             // the dump file, once succeeded
	cancel     context.CancelFunc // stops a running capture
	done       chan struct{}      // closed when a capture has finished
	// restoreFrom is set on a restore: the URL Heroku fetched the dump from (secret-bearing).
	restoreFrom string
}

func (t *transfer) finished() bool { return !t.finishedAt.IsZero() }
func (t *transfer) ok() bool {
	return t.finished() && t.succeeded != nil && *t.succeeded && t.path != ""
}
func (t *transfer) name() string {
	switch {
	case t.restoreFrom != "":
		return fmt.Sprintf("r%03d", t.num)
	case t.schedule != nil:
		return fmt.Sprintf("a%03d", t.num)
	}
	return fmt.Sprintf("b%03d", t.num)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(dataTime)
}

// json is the transfer as the Data API writes it: every field, nulls explicit, logs only when
// verbose.
func (t *transfer) json(verbose bool) map[string]any {
	var succeeded, source any
	if t.succeeded != nil {
		succeeded = *t.succeeded
	}
	if t.source != nil {
		source = *t.source
	}
	m := map[string]any{
		"uuid": t.uuid, "num": t.num,
		"from_name": t.fromName, "from_type": "pg_dump", "from_url": t.addon.dsn,
		"to_name": "BACKUP", "to_type": "gof3r", "to_url": t.toURL(),
		"options": map[string]any{}, "source_bytes": source, "processed_bytes": t.processed,
		"succeeded": succeeded, "warnings": 0, "num_keep": t.numKeep,
		"created_at": nullTime(t.created), "started_at": nullTime(t.started), "updated_at": nullTime(t.updated),
		"finished_at": nullTime(t.finishedAt), "canceled_at": nullTime(t.canceled), "deleted_at": nullTime(t.deleted),
		"purged_at": nil,
	}
	if t.schedule != nil {
		m["to_name"], m["schedule"] = "SCHEDULED BACKUP", map[string]any{"uuid": t.schedule.uuid}
	}
	if t.restoreFrom != "" {
		// A restore: the dump is fetched over HTTP (htcat) into pg_restore on the database.
		m["from_name"], m["from_type"], m["from_url"] = "BACKUP", "htcat", t.restoreFrom
		m["to_name"], m["to_type"], m["to_url"] = t.fromName, "pg_restore", t.addon.dsn
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

// toURL is where Heroku stored the backup: its own bucket, which a restore may name as the
// backup_url (pg:backups:restore b001 does).
func (t *transfer) toURL() string {
	return fmt.Sprintf("https://xfrtu.s3.amazonaws.com/%s/%s/%s", t.addon.id, t.created.Format("2006-01-02T15:04:05Z"), t.uuid)
}

// newTransferLocked creates a backup transfer of ad under its billing app, numbered in the
// app's one sequence. from_name is the add-on's attachment name on the billing app.
func (s *Sim) newTransferLocked(ad *addon) *transfer {
	app := ad.app.name
	s.nums[app]++
	from := "DATABASE"
	for _, a := range s.atts {
		if a.addon == ad && a.app == ad.app && a.namespace == nil {
			from = a.name
			break
		}
	}
	t := &transfer{uuid: newID(), num: s.nums[app], addon: ad, fromName: from, created: s.now(), numKeep: ad.keep.manual}
	s.transfers[app] = append(s.transfers[app], t)
	return t
}

// capture starts a backup — a real pg_dump -Fc of the add-on's database, in the background —
// and returns the transfer as the 201 answer shows it (not started yet). sc is the schedule of a
// scheduled backup, nil for a manual one.
func (s *Sim) capture(ad *addon, sc *schedule) (view map[string]any, num int) {
	s.mu.Lock()
	t := s.newTransferLocked(ad)
	if sc != nil {
		t.schedule, t.numKeep = sc, ad.keep.scheduled
	}
	view, num = t.json(false), t.num
	fail, failLine := s.faults.takeCaptureFailure()
	stay := s.o.CaptureDelay + s.faults.captureSlowness()
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	path := filepath.Join(s.o.DumpDir, fmt.Sprintf("%s-%03d-%s.dump", ad.app.name, t.num, t.uuid[:8]))
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer close(t.done)
		defer cancel()
		begin := time.Now() // real time: the delay must pass even under a fake clock
		s.update(func(now time.Time) {
			t.started, t.updated = now, now
			t.logs = append(t.logs, logLine{now, "info", "Starting backup of " + t.fromName + " to " + t.name()})
		})
		var ok bool
		var lines []string
		if fail {
			lines = []string{failLine}
		} else {
			ok, lines = s.pgDump(ctx, ad.dsn, path)
		}
		if ok {
			if fi, err := os.Stat(path); err == nil {
				size := fi.Size()
				// Heroku fills source_bytes while the transfer still runs; processed_bytes comes last.
				s.update(func(now time.Time) { t.source, t.updated = &size, now })
			} else {
				ok, lines = false, []string{"pg_dump: error: " + err.Error()}
			}
		}
		select {
		case <-time.After(time.Until(begin.Add(stay))):
		case <-ctx.Done():
		}
		s.update(func(now time.Time) {
			t.updated = now
			failed := false
			switch {
			case ctx.Err() != nil:
				t.canceled, t.finishedAt, t.succeeded = now, now, &failed
				t.logs = append(t.logs, logLine{now, "error", "Transfer canceled"})
				os.Remove(path)
			case ok:
				t.finishedAt, t.succeeded, t.processed, t.path = now, &ok, *t.source, path
				t.logs = append(t.logs, logLine{now, "info", fmt.Sprintf("Backup %s completed: %d bytes", t.name(), *t.source)})
				s.retireLocked(t)
			default:
				t.finishedAt, t.succeeded = now, &failed
				for _, l := range lines {
					t.logs = append(t.logs, logLine{now, "error", l})
				}
				os.Remove(path)
			}
		})
	}()
	return view, num
}

// pgDump runs the dump as Heroku's capture does (custom format, no owners, no privileges) and
// returns whether it succeeded and its stderr lines.
func (s *Sim) pgDump(ctx context.Context, dsn, path string) (bool, []string) {
	cmd := exec.CommandContext(ctx, s.o.PgDump, "-Fc", "--no-owner", "--no-acl", "-f", path, "-d", dsn)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if err != nil && len(lines) == 0 {
		lines = []string{"pg_dump: error: " + err.Error()}
	}
	return err == nil, lines
}

func (s *Sim) update(f func(now time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.now())
}
