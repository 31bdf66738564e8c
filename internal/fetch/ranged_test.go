package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rangeServer serves data with Range support, and can cut connections and expire URLs.
type rangeServer struct {
	data      []byte
	cutEvery  int          // cut one response in cutEvery after a random number of bytes (0: never)
	validGen  atomic.Int64 // the URL generation currently valid; older ones are "expired"
	requests  atomic.Int64
	heads     atomic.Int64
	mu        sync.Mutex
	rnd       *mrand.Rand
	noRange   bool
	authSeen  atomic.Bool
	lastRange string
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Header.Get("Authorization") != "" {
		s.authSeen.Store(true)
	}
	if r.Method == http.MethodHead {
		s.heads.Add(1)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if gen := r.URL.Query().Get("gen"); gen != fmt.Sprint(s.validGen.Load()) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
		return
	}
	if s.noRange {
		r.Header.Del("Range")
	}
	s.mu.Lock()
	cut := s.cutEvery > 0 && s.rnd.IntN(s.cutEvery) == 0
	cutAt := s.rnd.IntN(64 << 10)
	s.mu.Unlock()
	if cut {
		hj, _ := w.(http.Hijacker)
		conn, buf, _ := hj.Hijack()
		start, end := int64(0), int64(len(s.data)-1)
		if a, b, ok := parseRangeHeader(r.Header.Get("Range")); ok {
			start, end = a, min(b, end)
		}
		fmt.Fprintf(buf, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n",
			start, end, len(s.data), end-start+1)
		buf.Write(s.data[start:min(start+int64(cutAt), end+1)])
		buf.Flush()
		conn.Close()
		return
	}
	http.ServeContent(w, r, "backup.dump", time.Time{}, bytes.NewReader(s.data))
}

func parseRangeHeader(h string) (int64, int64, bool) {
	var a, b int64
	_, err := fmt.Sscanf(h, "bytes=%d-%d", &a, &b)
	return a, b, err == nil
}

func randomData(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func download(t *testing.T, srv *httptest.Server, s *rangeServer, o Options) ([]byte, int64, error) {
	t.Helper()
	var renewals atomic.Int64
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		renewals.Add(1)
		return fmt.Sprintf("%s/b.dump?gen=%d&X-Amz-Signature=s3cr3t", srv.URL, s.validGen.Load()), time.Now().Add(time.Hour), nil
	}
	if o.BaseDelay == 0 {
		o.BaseDelay = time.Millisecond
	}
	d := &Ranged{Options: o}
	body, size, err := d.Open(context.Background(), urlFn)
	if err != nil {
		return nil, 0, err
	}
	defer body.Close()
	got, err := io.ReadAll(body)
	return got, size, err
}

func TestRangedDownloadsInOrder(t *testing.T) {
	for _, n := range []int{1, 1000, 64 << 10, 64<<10 + 1, 1<<20 + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := &rangeServer{data: randomData(t, n), rnd: mrand.New(mrand.NewPCG(1, 2))}
			srv := httptest.NewServer(s)
			defer srv.Close()
			got, size, err := download(t, srv, s, Options{Concurrency: 3, ChunkSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(n) || !bytes.Equal(got, s.data) {
				t.Fatalf("size %d, %d bytes, equal=%v", size, len(got), bytes.Equal(got, s.data))
			}
			if s.heads.Load() != 0 || s.authSeen.Load() {
				t.Error("the download sent a HEAD or an Authorization header")
			}
		})
	}
}

// A connection cut at a random offset is resumed where it stopped; 20 trials, byte-identical.
func TestRangedResumesAfterCuts(t *testing.T) {
	data := randomData(t, 3<<20+123)
	for trial := range 20 {
		s := &rangeServer{data: data, cutEvery: 3, rnd: mrand.New(mrand.NewPCG(uint64(trial), 7))}
		srv := httptest.NewServer(s)
		got, _, err := download(t, srv, s, Options{Concurrency: 4, ChunkSize: 256 << 10, MaxAttempts: 20})
		srv.Close()
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("trial %d: archive differs", trial)
		}
	}
}

func TestRangedRenewsExpiredURL(t *testing.T) {
	s := &rangeServer{data: randomData(t, 2<<20), rnd: mrand.New(mrand.NewPCG(1, 2))}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var calls atomic.Int64
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		calls.Add(1)
		return fmt.Sprintf("%s/b.dump?gen=%d", srv.URL, s.validGen.Load()), time.Now().Add(time.Hour), nil
	}
	body, _, err := (&Ranged{Options: Options{Concurrency: 1, ChunkSize: 256 << 10, BaseDelay: time.Millisecond}}).Open(context.Background(), urlFn)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 300<<10)
	if _, err := io.ReadFull(body, head); err != nil {
		t.Fatal(err)
	}
	s.validGen.Add(1) // every URL handed out so far expires
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), s.data) {
		t.Fatal("archive differs after renewal")
	}
	if calls.Load() != 2 {
		t.Errorf("URL fetched %d times, want 2 (one renewal)", calls.Load())
	}
}

func TestRangedFailsClearly(t *testing.T) {
	s := &rangeServer{data: randomData(t, 1<<20), rnd: mrand.New(mrand.NewPCG(1, 2)), cutEvery: 1}
	srv := httptest.NewServer(s)
	defer srv.Close()
	// Every response is cut at a random offset below 64 KiB: progress continues, so it succeeds...
	if _, _, err := download(t, srv, s, Options{Concurrency: 2, ChunkSize: 128 << 10, MaxAttempts: 3}); err != nil {
		t.Fatalf("progressing download failed: %v", err)
	}
	// ...but a server that refuses for good fails without retrying forever, naming the host only.
	bad := func(ctx context.Context) (string, time.Time, error) {
		return srv.URL + "/b.dump?gen=-1&X-Amz-Signature=s3cr3t", time.Now().Add(time.Hour), nil
	}
	_, _, err := (&Ranged{Options: Options{BaseDelay: time.Millisecond}}).Open(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden (AccessDenied: Request has expired)") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v", err)
	}
}

func TestRangedServerWithoutRange(t *testing.T) {
	s := &rangeServer{data: randomData(t, 100<<10), rnd: mrand.New(mrand.NewPCG(1, 2)), noRange: true}
	srv := httptest.NewServer(s)
	defer srv.Close()
	_, _, err := download(t, srv, s, Options{ChunkSize: 64 << 10})
	if err == nil || !strings.Contains(err.Error(), "does not support Range") {
		t.Fatalf("err = %v", err)
	}
}

func TestRangedCloseStopsWork(t *testing.T) {
	s := &rangeServer{data: randomData(t, 4<<20), rnd: mrand.New(mrand.NewPCG(1, 2))}
	srv := httptest.NewServer(s)
	defer srv.Close()
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		return fmt.Sprintf("%s/b.dump?gen=0", srv.URL), time.Now().Add(time.Hour), nil
	}
	ct := &countingTransport{next: http.DefaultTransport}
	body, _, err := (&Ranged{HTTP: &http.Client{Transport: ct}, Options: Options{Concurrency: 2, ChunkSize: 64 << 10}}).Open(context.Background(), urlFn)
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, body, 100<<10)
	body.Close()
	// The requests under way when Close was called end (they are cancelled)...
	deadline := time.Now().Add(10 * time.Second)
	for ct.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still in flight 10 s after Close", ct.inFlight.Load())
		}
		time.Sleep(5 * time.Millisecond) // a poll interval, not a guess at how long it takes
	}
	// ...and none starts afterwards: watching for a while is the test itself.
	before := ct.started.Load()
	time.Sleep(100 * time.Millisecond)
	if after := ct.started.Load(); after != before {
		t.Errorf("requests went on after Close: %d → %d", before, after)
	}
	if before > 10 {
		t.Errorf("%d requests for 100 KiB read: the reader ran far ahead of its window", before)
	}
}

// BenchmarkRanged measures the download path (ranges in flight, in-order delivery) over loopback.
func BenchmarkRanged(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "b.dump", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	urlFn := func(ctx context.Context) (string, time.Time, error) {
		return srv.URL + "/b.dump", time.Now().Add(time.Hour), nil
	}
	d := &Ranged{Options: Options{Concurrency: 4, ChunkSize: 8 << 20}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		body, _, err := d.Open(context.Background(), urlFn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

// countingTransport counts the requests started and those not finished yet.
type countingTransport struct {
	next              http.RoundTripper
	started, inFlight atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.started.Add(1)
	c.inFlight.Add(1)
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		c.inFlight.Add(-1)
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, done: func() { c.inFlight.Add(-1) }}
	return resp, nil
}

// countedBody reports the end of a response once, when its body is closed.
type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
