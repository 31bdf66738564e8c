package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	return Backup{Meta: Meta{App: t.App, Database: "DATABASE", Backup: "b042", At: finished, FinishedAt: finished, Mode: "latest"},
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

// The live line shows every running target on one line, redrawn whole, never one target's line
// over another's.
func TestRunParallelLiveLine(t *testing.T) {
	src := &gateSource{body: realDump(t), want: 2, total: 2,
		wrap: func(r *bytes.Reader) io.Reader { return throttled{Reader: r, bps: 64 << 10} }}
	live := &syncWriter{w: &bytes.Buffer{}}
	j := &Job{Source: src, Destinations: []Destination{{Name: "mem", Store: &memstore.Store{}}}, Version: "test", Log: zerolog.Nop(),
		Parallel: 2, Live: live, ProgressEvery: 20 * time.Millisecond}
	for _, r := range j.Run(context.Background(), parallelTargets(2)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	both := false
	for _, frame := range strings.Split(live.String(), "\r\033[K") {
		if strings.Contains(frame, "a-app:DATABASE b042") && strings.Contains(frame, "b-app:DATABASE b042") {
			both = true
		}
	}
	if !both {
		t.Errorf("no redraw showed both targets:\n%q", live.String())
	}
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

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
