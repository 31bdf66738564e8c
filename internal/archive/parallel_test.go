package archive

import (
	"bytes"
	"context"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// gateSource counts the targets open at once and holds each Open until want are open together
// (or a deadline passes), so that a job running fewer at once fails instead of passing slowly.
type gateSource struct {
	body []byte
	want int
	wrap func(*bytes.Reader) io.Reader

	mu      sync.Mutex
	open    int
	peak    int
	started int
	total   int
}

func (s *gateSource) Open(ctx context.Context, t Target) (Backup, error) {
	s.mu.Lock()
	s.open++
	s.started++
	s.peak = max(s.peak, s.open)
	deadline := time.Now().Add(10 * time.Second)
	// The last targets of a run may be fewer than want: they need not wait for company.
	for s.open < min(s.want, s.total-s.started+s.open) {
		if time.Now().After(deadline) {
			s.open--
			s.mu.Unlock()
			return Backup{}, errors.New("targets did not run together")
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond) // poll the count, bounded by the deadline
		s.mu.Lock()
	}
	s.mu.Unlock()
	var r io.Reader = bytes.NewReader(s.body)
	if s.wrap != nil {
		r = s.wrap(bytes.NewReader(s.body))
	}
	return Backup{Meta: catalog.Meta{App: t.App, Database: "DATABASE", Backup: "b042", At: finished, FinishedAt: finished, Mode: "latest"},
		Body: closer{Reader: r, close: func() { s.mu.Lock(); s.open--; s.mu.Unlock() }}, Size: int64(len(s.body))}, nil
}

type closer struct {
	io.Reader
	close func()
}

func (c closer) Close() error { c.close(); return nil }

func parallelTargets(n int) []Target {
	var ts []Target
	for _, a := range []string{"a-app", "b-app", "c-app", "d-app", "e-app", "f-app"}[:n] {
		ts = append(ts, Target{App: a, Database: "DATABASE"})
	}
	return ts
}

// BACKUP_PARALLEL=3 over six targets: three at a time, never more, every one archived, the
// results in the targets' order.
func TestRunParallel(t *testing.T) {
	src := &gateSource{body: realDump(t), want: 3, total: 6}
	st := &memstore.Store{}
	var logs bytes.Buffer
	j := &Job{Source: src, Destinations: []Destination{{Name: "mem", Store: st}}, Version: "test", Log: zerolog.New(&syncWriter{w: &logs}), Parallel: 3}
	targets := parallelTargets(6)
	results := j.Run(context.Background(), targets)
	for i, r := range results {
		if r.Err != nil || r.Target != targets[i] {
			t.Errorf("result %d: %v %v", i, r.Target, r.Err)
		}
	}
	if src.peak != 3 {
		t.Errorf("%d targets ran at once, want 3", src.peak)
	}
	// Every line about a target names it.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, `"backup":"b042"`) && !strings.Contains(line, `"app":`) {
			t.Errorf("a target's line without its app: %s", line)
		}
	}
}

// Every running target reports its progress as events, labelled with its target when several
// run at once: a renderer can show them side by side.
func TestRunParallelProgress(t *testing.T) {
	src := &gateSource{body: realDump(t), want: 2, total: 2,
		wrap: func(r *bytes.Reader) io.Reader { return throttled{Reader: r, bps: 64 << 10} }}
	rec := &recorder{}
	j := &Job{Source: src, Destinations: []Destination{{Name: "mem", Store: &memstore.Store{}}}, Version: "test", Log: zerolog.Nop(),
		Parallel: 2, Progress: rec, ProgressEvery: 20 * time.Millisecond}
	for _, r := range j.Run(context.Background(), parallelTargets(2)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	streaming, most := map[string]bool{}, 0
	var bytesSeen, copies, targets int
	for _, ev := range rec.all() {
		switch {
		case ev.Kind == Started:
			streaming[ev.Label] = true
			most = max(most, len(streaming))
		case ev.Kind == Bytes:
			if !streaming[ev.Label] || ev.Bytes < 0 || ev.Total <= 0 {
				t.Errorf("bytes of a target not streaming: %+v", ev)
			}
			bytesSeen++
		case ev.Kind == Finished && ev.Destination != "":
			delete(streaming, ev.Label)
			if ev.Destination != "mem" || ev.Err != nil || ev.Bytes != ev.Total {
				t.Errorf("copy finished %+v", ev)
			}
			copies++
		case ev.Kind == Finished:
			targets++
		}
	}
	if most != 2 || bytesSeen == 0 || copies != 2 || targets != 2 {
		t.Errorf("%d streaming at once, %d byte events, %d copies and %d targets finished; want 2, some, 2, 2", most, bytesSeen, copies, targets)
	}
	for _, label := range []string{"a-app:DATABASE b042", "b-app:DATABASE b042"} {
		if !slices.ContainsFunc(rec.all(), func(ev Event) bool { return ev.Kind == Started && ev.Label == label }) {
			t.Errorf("no target started as %q", label)
		}
	}
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Event(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
