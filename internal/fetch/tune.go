package fetch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// A per-connection limit at the source (S3 serves one connection at a fraction of what a host
// can take) makes the number of connections the speed; past some number, the sink, the CPU or
// the source's own throttling makes more useless or harmful. So the count is measured, not
// configured: the download starts with a few ranges in flight and doubles them while a window
// of aggregate throughput rises by a useful margin, goes back to the last count that paid when
// one does not, and never passes Options.Concurrency (the memory budget is sized for it). A
// source that answers 503 SlowDown or 429 lowers the count below the number of requests it
// refused at, for the rest of the download.
const (
	// startRanges is the count a download starts with: what a default of four connections
	// always had.
	startRanges = 4
	// usefulGain is how much more throughput a doubling must bring to be kept.
	usefulGain = 0.10
	// tuneWindow is the shortest measurement at one count (each connection also moves two
	// ranges' worth in it): long enough to span a request's latency, short next to a big download.
	tuneWindow = 400 * time.Millisecond
)

// tuning is what a download decided about its connections, for the log.
type tuning struct {
	Connections int
	Rate        float64 // bytes per second measured at Connections; 0 when not measured
	Reason      string
}

// tuner holds the count of ranges in flight and the slots under it. A slot is taken when a
// range is started and given back when the reader is done with its bytes, so the count bounds
// the buffers held as well as the requests made.
type tuner struct {
	max    int
	chunk  int64
	window time.Duration
	report func(tuning)
	wake   chan struct{} // cap 1: a slot was freed or the count changed
	// now is the clock the windows are measured with; tests drive the decisions in virtual
	// time, where a busy machine cannot blur what is measured.
	now func() time.Time

	mu       sync.Mutex
	limit    int // ranges allowed now
	ceiling  int // the most the source has not refused
	taken    int // slots held
	active   int // requests on the wire
	settled  bool
	winStart time.Time
	winBytes int64
	// busy is the window's integral of requests on the wire over time: a window whose requests
	// were on the wire for less than three quarters of its slots' time measured the reader
	// (an upload or a check holding the slots), not the source, and decides nothing.
	busy      time.Duration
	busyFrom  time.Time
	prevRate  float64
	prevLimit int
	windows   int // windows that ended, deciding or not
}

func newTuner(max int, chunk int64, window time.Duration, report func(tuning)) *tuner {
	if window <= 0 {
		window = tuneWindow
	}
	t := &tuner{max: max, chunk: chunk, window: window, report: report, wake: make(chan struct{}, 1),
		now: time.Now, limit: min(startRanges, max), ceiling: max}
	return t
}

// begin starts the first measurement, once the first range (alone, to learn the size) is in.
func (t *tuner) begin() {
	t.mu.Lock()
	t.open(t.now())
	t.mu.Unlock()
}

// acquire waits for a slot.
func (t *tuner) acquire(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.taken < t.limit {
			t.taken++
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		select {
		case <-t.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives a slot back.
func (t *tuner) release() {
	t.mu.Lock()
	t.taken--
	t.mu.Unlock()
	t.signal()
}

func (t *tuner) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// start and stop bracket one request on the wire.
func (t *tuner) start() { t.mu.Lock(); t.onWire(+1); t.mu.Unlock() }
func (t *tuner) stop()  { t.mu.Lock(); t.onWire(-1); t.mu.Unlock() }

func (t *tuner) onWire(d int) {
	now := t.now()
	if now.After(t.winStart) {
		from := t.busyFrom
		if from.Before(t.winStart) {
			from = t.winStart
		}
		t.busy += time.Duration(t.active) * now.Sub(from)
	}
	t.busyFrom = now
	t.active += d
}

// add counts n bytes read from the source and, at the end of a window, decides the next count.
// A window counts bytes as they arrive, not ranges as they end, so the ranges a window inherits
// half done do not inflate it; and it opens a quarter of a window after a change, once the
// connections added have made their first requests.
func (t *tuner) add(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.settled || now.Before(t.winStart) {
		return
	}
	t.winBytes += int64(n)
	el := now.Sub(t.winStart)
	if el < t.window || t.winBytes < 2*int64(t.limit)*t.chunk {
		return
	}
	t.onWire(0)
	t.windows++
	if t.busy < el*time.Duration(t.limit)*3/4 {
		t.open(now) // the reader was the limit: measure again
		return
	}
	rate := float64(t.winBytes) / el.Seconds()
	switch {
	case t.prevLimit > 0 && rate < t.prevRate*(1+usefulGain):
		t.settle(tuning{Connections: t.prevLimit, Rate: t.prevRate,
			Reason: fmt.Sprintf("%d connections moved %s (%+.0f%%)", t.limit, units.PerSecond(rate), (rate/t.prevRate-1)*100)})
		t.limit = t.prevLimit
	case t.limit >= t.ceiling:
		why := "the configured maximum"
		if t.ceiling < t.max {
			why = "the most the source allowed"
		}
		t.settle(tuning{Connections: t.limit, Rate: rate, Reason: why})
	default:
		t.prevRate, t.prevLimit = rate, t.limit
		t.limit = min(t.ceiling, 2*t.limit)
		t.open(now.Add(t.window / 4))
		t.signal()
	}
}

// open starts a window at from.
func (t *tuner) open(from time.Time) {
	t.winStart, t.winBytes, t.busy, t.busyFrom = from, 0, 0, from
}

// throttled is called when the source refused a request as too many (503 SlowDown, 429): the
// count drops below the requests on the wire then, and stays there.
func (t *tuner) throttled(status string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active <= 1 {
		return // refused alone: an outage, not too many at once; the retry deals with it
	}
	c := t.active - 1
	if c >= t.ceiling {
		return // already below it
	}
	t.ceiling = c
	t.limit = min(t.limit, c)
	t.settle(tuning{Connections: t.limit, Reason: fmt.Sprintf("the source answered %s with %d requests in flight", status, t.active)})
}

// finish reports the count a download ended with when no window ever decided it.
func (t *tuner) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.settled:
	case t.windows == 0:
		t.settle(tuning{Connections: t.limit, Reason: "the download ended before a measurement"})
	default:
		t.settle(tuning{Connections: t.limit, Reason: "the reader (an upload, the check) was slower than the download at every count measured"})
	}
}

func (t *tuner) settle(tu tuning) {
	t.settled = true
	if t.report != nil {
		t.report(tu)
	}
}
