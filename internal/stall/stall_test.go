package stall

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func logged(t *testing.T, label string) (context.Context, *testenv.Output) {
	t.Helper()
	lb := &testenv.Output{}
	log := zerolog.New(lb)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang fails, not blocks
	t.Cleanup(cancel)
	return WithLabel(log.WithContext(ctx), label), lb
}

var short = Options{Idle: 200 * time.Millisecond, Header: 400 * time.Millisecond}

// hold blocks a handler until its client goes away or the test ends.
func hold(t *testing.T, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-t.Context().Done():
	}
}

func client(o Options) *Client { return &Client{Next: &http.Client{}, Options: o} }

func TestResponseBodyStall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		hold(t, r) // the connection stays open, nothing more comes
	}))
	defer srv.Close()
	ctx, lb := logged(t, "download range 0-99999")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/b001.dump?X-Amz-Signature=s3cr3t", nil)
	began := time.Now()
	resp, err := client(Options{Idle: short.Idle, Header: time.Hour}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var se *Error
	if !errors.As(err, &se) || se.Phase != "response body" || se.Bytes != 1000 || len(got) != 1000 {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	if d := time.Since(began); d > 3*time.Second { // the body's silence counts, not the header's allowance
		t.Fatalf("the stall was noticed after %s", d)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %q", err)
	}
	out := lb.String()
	for _, want := range []string{`"level":"warn"`, `"request":"download range 0-99999"`, `"host":"` + host + `"`, `"stalled":"response body"`, `"bytes":1000`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "b001.dump") {
		t.Errorf("log shows the URL: %s", out)
	}
}

func TestNoResponseHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // takes the whole body, then never answers
		hold(t, r)
	}))
	defer srv.Close()
	for _, body := range []io.Reader{nil, bytes.NewReader(make([]byte, 1<<20))} {
		ctx, lb := logged(t, "upload part 2 of s3://b/k")
		req, _ := http.NewRequestWithContext(ctx, "PUT", srv.URL, body)
		began := time.Now()
		_, err := client(short).Do(req)
		var se *Error
		if !errors.As(err, &se) || se.Phase != "response headers" {
			t.Fatalf("body %v: err %v", body != nil, err)
		}
		if d := time.Since(began); d < short.Header || d > 5*time.Second {
			t.Fatalf("cancelled after %s, want just over %s", d, short.Header)
		}
		if !strings.Contains(lb.String(), `"request":"upload part 2 of s3://b/k"`) {
			t.Fatalf("log: %s", lb)
		}
	}
}

func TestRequestBodyNotTaken(t *testing.T) {
	// A peer that accepts the connection and never reads: the socket buffers fill, then nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				<-t.Context().Done()
				c.Close()
			}()
		}
	}()
	size := int64(256 << 20) // far more than loopback socket buffers hold
	ctx, _ := logged(t, "put object s3://b/k")
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+ln.Addr().String()+"/k", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	_, err = client(Options{Idle: 300 * time.Millisecond, Header: time.Hour}).Do(req)
	var se *Error
	if !errors.As(err, &se) || se.Phase != "request body" || se.Size != size || se.Bytes <= 0 || se.Bytes >= size {
		t.Fatalf("err %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestSlowButMovingIsNotAStall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20")
		for range 20 { // 20 bytes over about 2 s: four times the idle limit in all, never idle for a fifth of it
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	ctx, _ := logged(t, "")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	// Limits a busy machine's late wake-ups stay far from; the stall tests use shorter ones.
	resp, err := client(Options{Idle: 500 * time.Millisecond, Header: 2 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 20 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

func TestReaderPauseIsNotAStall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 64<<10))
	}))
	defer srv.Close()
	ctx, _ := logged(t, "")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := client(short).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	<-time.After(3 * short.Idle) // the consumer is busy: the network owes nothing meanwhile
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 64<<10-100 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

func TestOtherErrorsPassThrough(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	req, _ := http.NewRequest("GET", "http://"+addr, nil)
	_, err := client(short).Do(req)
	var se *Error
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err %v", err)
	}
}

func TestTransportWatchesToo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hold(t, r) }))
	defer srv.Close()
	ctx, _ := logged(t, "")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	_, err := (&http.Client{Transport: &Transport{Options: short}}).Do(req)
	var se *Error
	if !errors.As(err, &se) || se.Phase != "response headers" {
		t.Fatalf("err %v", err)
	}
}

// AtMost makes one request stricter than its client: an answer that does not come is given up
// after the cap, not the client's hour; a cap looser than the client's changes nothing.
func TestAtMostCapsTheClientsSilences(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hold(t, r) }))
	defer srv.Close()
	for _, tc := range []struct {
		client, cap, want time.Duration
	}{
		{time.Hour, 300 * time.Millisecond, 300 * time.Millisecond},
		{300 * time.Millisecond, time.Hour, 300 * time.Millisecond},
	} {
		ctx, _ := logged(t, "")
		req, _ := http.NewRequestWithContext(AtMost(ctx, Options{Header: tc.cap}), "GET", srv.URL, nil)
		began := time.Now()
		_, err := client(Options{Idle: time.Hour, Header: tc.client}).Do(req)
		var se *Error
		if !errors.As(err, &se) || se.Phase != "response headers" || se.Quiet != tc.want {
			t.Fatalf("client %s, cap %s: err %v", tc.client, tc.cap, err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Fatalf("client %s, cap %s: cancelled after %s", tc.client, tc.cap, d)
		}
	}
}

// WithActivity hears of every byte the network takes of a request body and every byte of an
// answer, and of nothing while the request waits.
func TestWithActivityCountsBytesMoving(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(make([]byte, 1000))
	}))
	defer srv.Close()
	var calls atomic.Int64
	ctx, _ := logged(t, "")
	ctx = WithActivity(ctx, func() { calls.Add(1) })
	req, _ := http.NewRequestWithContext(ctx, "PUT", srv.URL, bytes.NewReader(make([]byte, 1<<20)))
	resp, err := client(short).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sent := calls.Load()
	if sent == 0 {
		t.Fatal("no activity while the body was taken")
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls.Load() == sent {
		t.Fatal("no activity while the answer arrived")
	}

	// A peer that never answers: the request's silence is no activity.
	quiet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hold(t, r) }))
	defer quiet.Close()
	calls.Store(0)
	req, _ = http.NewRequestWithContext(ctx, "GET", quiet.URL, nil)
	if _, err := client(short).Do(req); err == nil {
		t.Fatal("a request without an answer succeeded")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d activity calls for a request that moved nothing", n)
	}
}

// WithRetries allows its requests that many stalls between them: the one after is final, not
// retryable, and says so in the warning; requests without it are always retryable.
func TestWithRetriesMakesTheLastStallFinal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hold(t, r) }))
	defer srv.Close()
	ctx, lb := logged(t, "upload part 1 of s3://b/k")
	budgeted := WithRetries(ctx, 2)
	for i, c := range []context.Context{budgeted, budgeted, budgeted, ctx} {
		req, _ := http.NewRequestWithContext(c, "GET", srv.URL, nil)
		_, err := client(short).Do(req)
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("request %d: err %v", i, err)
		}
		if want := i == 2; se.Final != want || se.RetryableError() == want || se.Temporary() == want {
			t.Errorf("request %d: final %v, want %v", i, se.Final, want)
		}
	}
	if n := strings.Count(lb.String(), "its retries are used up"); n != 1 {
		t.Errorf("%d warnings say the retries are used up, want 1:\n%s", n, lb)
	}
}
