package fetch

import (
	"strings"
	"testing"
	"time"
)

// simulate drives a tuner in virtual time: every 10 ms, the requests on the wire (onWire, given
// the count allowed and the time since the start) move rate(on the wire) bytes per second. The
// decisions are the tuner's alone, whatever else the machine is doing.
func simulate(t *testing.T, total int64, rate func(onWire int) float64, onWire func(limit int, at time.Duration) int) tuning {
	t.Helper()
	var got []tuning
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := start
	tu := newTuner(16, 32<<10, tuneWindow, func(x tuning) { got = append(got, x) })
	tu.now = func() time.Time { return clock }
	tu.begin()
	const step = 10 * time.Millisecond
	wire := 0
	var moved float64
	for moved < float64(total) {
		w := onWire(tu.limit, clock.Sub(start))
		for ; wire < w; wire++ {
			tu.start()
		}
		for ; wire > w; wire-- {
			tu.stop()
		}
		clock = clock.Add(step)
		n := rate(w) * step.Seconds()
		moved += n
		tu.add(int(n))
		if clock.Sub(start) > time.Hour {
			t.Fatal("the simulated download never ended")
		}
	}
	tu.finish()
	if len(got) != 1 {
		t.Fatalf("the tuner reported %d times (%+v); want once", len(got), got)
	}
	return got[0]
}

// perConn is a source that serves each connection at c bytes/s and the host at most host bytes/s
// (0: no such limit).
func perConn(c, host float64) func(int) float64 {
	return func(n int) float64 {
		r := float64(n) * c
		if host > 0 && r > host {
			r = host
		}
		return r
	}
}

func allowed(limit int, _ time.Duration) int { return limit }

// A per-connection cap and nothing else: every doubling pays, up to the maximum.
func TestTunerDecidesTheMaximumUnderAPerConnectionCap(t *testing.T) {
	got := simulate(t, 1<<30, perConn(2e6, 0), allowed)
	if got.Connections != 16 || got.Reason != "the configured maximum" {
		t.Fatalf("chose %+v; want 16, the maximum", got)
	}
}

// The host's bandwidth is the limit at four connections: eight bring nothing, and the count goes
// back to four.
func TestTunerDecidesToStopWhenMoreConnectionsDoNotPay(t *testing.T) {
	got := simulate(t, 1<<30, perConn(2e6, 8.2e6), allowed)
	if got.Connections != 4 || !strings.HasPrefix(got.Reason, "8 connections moved") {
		t.Fatalf("chose %+v; want 4, as 8 did not pay", got)
	}
}

// A doubling that brings less than the useful gain (10 %) is not kept; one that brings more is.
func TestTunerUsefulGainIsTheThreshold(t *testing.T) {
	// (A window's first step straddles its start, which adds a few per cent to the measured
	// gain; the rates are apart by more than that.)
	// 4 → 4 MB/s, 8 → 4.2 MB/s (+5%): back to 4.
	got := simulate(t, 1<<30, func(n int) float64 { return map[int]float64{4: 4e6, 8: 4.2e6, 16: 4.3e6}[n] }, allowed)
	if got.Connections != 4 {
		t.Fatalf("+5%% kept: %+v", got)
	}
	// 4 → 4 MB/s, 8 → 4.6 MB/s (+15%), 16 → 4.7 MB/s (+2%): settles at 8.
	got = simulate(t, 1<<30, func(n int) float64 { return map[int]float64{4: 4e6, 8: 4.6e6, 16: 4.7e6}[n] }, allowed)
	if got.Connections != 8 || !strings.HasPrefix(got.Reason, "16 connections moved") {
		t.Fatalf("+15%% not kept: %+v", got)
	}
}

// A reader slower than the source for the first seconds keeps half the slots off the wire: those
// windows decide nothing, and once it keeps up the count grows to the maximum.
func TestTunerDecidesNothingWhileTheReaderIsTheLimit(t *testing.T) {
	slowFirst := func(limit int, at time.Duration) int {
		if at < 3*time.Second {
			return limit / 2
		}
		return limit
	}
	got := simulate(t, 1<<30, perConn(2e6, 0), slowFirst)
	if got.Connections != 16 || got.Reason != "the configured maximum" {
		t.Fatalf("chose %+v; want 16, the maximum", got)
	}
	// A reader slow all along: the download ends at the count it started with, saying why.
	got = simulate(t, 64<<20, perConn(2e6, 0), func(limit int, _ time.Duration) int { return limit / 2 })
	if got.Connections != startRanges || !strings.HasPrefix(got.Reason, "the reader") {
		t.Fatalf("chose %+v; want %d, the reader being the limit", got, startRanges)
	}
}

// A download shorter than one window says so.
func TestTunerSaysWhenADownloadIsTooShortToMeasure(t *testing.T) {
	got := simulate(t, 1<<20, perConn(2e6, 0), allowed)
	if got.Connections != startRanges || got.Reason != "the download ended before a measurement" {
		t.Fatalf("chose %+v", got)
	}
}
