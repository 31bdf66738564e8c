package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// pacer spends time as a link of rate bytes per second would: shared by every connection of a
// server, it is a host's bandwidth; one per request, it is a per-connection cap.
type pacer struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

// pacerSlack is how far a sender that comes late may catch up: a busy machine wakes sleepers
// late, and a link's buffers would not lose the time, so the rate holds under load.
const pacerSlack = 250 * time.Millisecond

// reserve books n bytes on the link and returns when they are through it.
func (p *pacer) reserve(n int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	switch {
	case p.next.IsZero():
		p.next = now
	case p.next.Before(now.Add(-pacerSlack)):
		p.next = now.Add(-pacerSlack)
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	return p.next
}

// linkServer serves data in ranges at perConn bytes/s per request, all requests together at
// most host bytes/s (0: no such limit), and answers 503 SlowDown to requests beyond maxInFlight
// at once (0: never).
type linkServer struct {
	data        []byte
	perConn     float64
	host        *pacer
	maxInFlight int64
	refuseFirst atomic.Int64 // this many first requests answer 503 SlowDown, whatever is in flight
	inFlight    atomic.Int64
	peak        atomic.Int64
	refused     atomic.Int64
}

func (s *linkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if s.maxInFlight > 0 && n > s.maxInFlight || s.refuseFirst.Add(-1) >= 0 {
		s.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		return
	}
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	a, b, ok := parseRangeHeader(r.Header.Get("Range"))
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b = min(b, int64(len(s.data)-1))
	w.Header().Set("Content-Range", "bytes "+itoa(a)+"-"+itoa(b)+"/"+itoa(int64(len(s.data))))
	w.Header().Set("Content-Length", itoa(b-a+1))
	w.WriteHeader(http.StatusPartialContent)
	conn := &pacer{rate: s.perConn}
	for off := a; off <= b; off += 8 << 10 {
		end := min(off+8<<10, b+1)
		// Both links carry the bytes at once: they are through when the slower is.
		until := conn.reserve(int(end - off))
		if s.host != nil {
			if h := s.host.reserve(int(end - off)); h.After(until) {
				until = h
			}
		}
		time.Sleep(time.Until(until))
		if _, err := w.Write(s.data[off:end]); err != nil {
			return
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// tuned downloads from s and returns the bytes and the "download connections chosen" lines.
func tuned(t *testing.T, s *linkServer, o Options) []map[string]any {
	return tunedReading(t, s, o, nil)
}

// tunedReading is tuned with a reader that calls pace before each read.
func tunedReading(t *testing.T, s *linkServer, o Options, pace func(read int)) []map[string]any {
	t.Helper()
	srv := httptest.NewServer(s)
	defer srv.Close()
	var logBuf syncBuffer
	log := zerolog.New(&logBuf)
	ctx := log.WithContext(context.Background())
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	d := &Ranged{HTTP: &http.Client{Transport: tr}, Options: o}
	body, size, err := d.Open(ctx, fixedURL(srv.URL+"/b.dump"))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	if pace == nil {
		got, err = io.ReadAll(body)
	} else {
		buf := make([]byte, 32<<10)
		for {
			pace(len(got))
			n, rerr := body.Read(buf)
			got = append(got, buf[:n]...)
			if rerr == io.EOF {
				break
			}
			if err = rerr; err != nil {
				break
			}
		}
	}
	body.Close()
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if size != int64(len(s.data)) || !bytes.Equal(got, s.data) {
		t.Fatalf("downloaded %d bytes (size %d), not the %d served", len(got), size, len(s.data))
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "download connections chosen" {
			lines = append(lines, m)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no count was chosen; log:\n%s", logBuf.String())
	}
	return lines
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The tuner's tests measure links, not the machine: eight connections of connRate move
// 800 kB/s, which a busy two-core machine serves and reads under the race detector with CPU to
// spare, and a range takes over a second on the wire, so that the gap between two ranges of a
// connection (goroutines handing the slot on, slow to be scheduled there) stays well under the
// quarter of its time the tuner allows before it calls the reader the limit.
var tuneOptions = Options{Concurrency: 8, ChunkSize: 128 << 10, BaseDelay: 10 * time.Millisecond, tuneWindow: 150 * time.Millisecond}

const connRate = 100e3

// A per-connection cap and nothing else: every connection added pays, up to the maximum.
func TestTunerGrowsToTheMaximumUnderAPerConnectionCap(t *testing.T) {
	s := &linkServer{data: randomData(t, 5<<20), perConn: connRate}
	lines := tuned(t, s, tuneOptions)
	last := lines[len(lines)-1]
	if last["connections"] != float64(8) || last["why"] != "the configured maximum" {
		t.Fatalf("chose %v: %v; want 8, the maximum", last["connections"], last["why"])
	}
	if p := s.peak.Load(); p != 8 {
		t.Fatalf("peak requests in flight %d, want 8", p)
	}
}

// The host's bandwidth (300 kB/s), not the connection (200 kB/s), is the limit at four
// connections: doubling to eight brings nothing, and the download goes back to four.
func TestTunerStopsWhenMoreConnectionsDoNotPay(t *testing.T) {
	s := &linkServer{data: randomData(t, 3<<20), perConn: 2 * connRate, host: &pacer{rate: 3 * connRate}}
	o := tuneOptions
	o.ChunkSize = 96 << 10 // a range takes 1.3 s at four connections' share of the host
	lines := tuned(t, s, o)
	last := lines[len(lines)-1]
	if last["connections"] != float64(4) || !strings.HasPrefix(last["why"].(string), "8 connections moved") {
		t.Fatalf("chose %v: %v; want 4, as 8 did not pay", last["connections"], last["why"])
	}
}

// A source that answers 503 SlowDown beyond six requests at once: the download completes, with
// fewer connections than its maximum and no more than the source takes.
func TestTunerBacksOffOnSlowDown(t *testing.T) {
	s := &linkServer{data: randomData(t, 3<<20), perConn: connRate, maxInFlight: 6}
	o := tuneOptions
	o.BaseDelay = 100 * time.Millisecond // the refused range's retries outlast a range in flight
	lines := tuned(t, s, o)
	last := lines[len(lines)-1]
	n := last["connections"].(float64)
	if n > 6 || n < 1 || !strings.Contains(last["why"].(string), "503 Service Unavailable (SlowDown") {
		t.Fatalf("settled at %v: %v; want at most 6 after SlowDown", n, last["why"])
	}
	if s.refused.Load() == 0 {
		t.Fatal("the source never refused a request: the test did not test the back-off")
	}
}

// A reader slower than the source at first (an upload, a check catching up) says nothing about
// the source: the download does not settle on what it measured then, and grows once the reader
// keeps up.
func TestTunerIgnoresASlowReader(t *testing.T) {
	s := &linkServer{data: randomData(t, 6<<20), perConn: connRate}
	slow := func(read int) {
		if read < 512<<10 {
			time.Sleep(160 * time.Millisecond) // 32 KiB per 160 ms: 200 kB/s, half what four connections bring
		}
	}
	lines := tunedReading(t, s, tuneOptions, slow)
	last := lines[len(lines)-1]
	if len(lines) != 1 || last["connections"] != float64(8) || last["why"] != "the configured maximum" {
		t.Fatalf("chose %v; want once, 8, the maximum", lines)
	}
}

// A 503 to a request alone on the wire (the first, which learns the size) is an outage, not too
// many requests: it is retried, and the download still grows to the maximum.
func TestTunerIgnoresASlowDownAlone(t *testing.T) {
	s := &linkServer{data: randomData(t, 5<<20), perConn: connRate}
	s.refuseFirst.Store(1)
	lines := tuned(t, s, tuneOptions)
	if last := lines[len(lines)-1]; len(lines) != 1 || last["connections"] != float64(8) {
		t.Fatalf("chose %v; want 8 once", lines)
	}
}
