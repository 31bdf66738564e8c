package gcsstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// recorder stands between Toxiproxy and fake-gcs-server and counts what the upload did: the
// chunks Google acknowledged and the cancels of sessions, with their answers.
type recorder struct {
	mu      sync.Mutex
	chunks  int   // chunks sent to a session and taken
	cancels []int // the answers to DELETEs on a session
}

func (r *recorder) counts() (chunks int, cancels []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunks, append([]int(nil), r.cancels...)
}

func startRecorder(t *testing.T, upstream string) (*recorder, string) {
	rec := &recorder{}
	target, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps Host: the session URI points back here
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("upload_id") == "" {
			return nil
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		switch {
		case resp.Request.Method == http.MethodDelete:
			rec.cancels = append(rec.cancels, resp.StatusCode)
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPermanentRedirect:
			rec.chunks++
		}
		return nil
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the resets and stalls are the test's doing
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return rec, strings.TrimPrefix(srv.URL, "http://")
}

// faultCase is a bucket on fake-gcs-server reached through Toxiproxy (and the recorder), in
// chunks of 256 KiB, a chunk's retries bounded by 10 s.
type faultCase struct {
	proxy  *testenv.Proxy
	rec    *recorder
	st     *Store
	direct *Store
	key    string
	data   []byte
}

func newFaultCase(t *testing.T) *faultCase {
	t.Helper()
	srv := testenv.StartFakeGCS(t)
	bucket := srv.CreateBucket(t, "faults")
	rec, recAddr := startRecorder(t, srv.Host)
	p := testenv.StartToxiproxy(t).Proxy(t, recAddr)
	st, err := Open(context.Background(), Options{Bucket: bucket, Prefix: "pg", Endpoint: "http://" + p.Listen, ChunkSize: 256 << 10,
		Stall: stall.Options{Idle: 500 * time.Millisecond, Header: time.Second}, RetryDeadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := make([]byte, 2<<20+77)
	rand.Read(data)
	return &faultCase{proxy: p, rec: rec, st: st, direct: openTest(t, srv, bucket, "pg"), key: "shop/DATABASE_URL/b001.dump", data: data}
}

// put runs Put in the background; once Google took a chunk, fault runs, before the source
// yields more than its first 768 KiB.
func (c *faultCase) put(t *testing.T, ctx context.Context, fault func()) <-chan error {
	t.Helper()
	reached := make(chan struct{})
	src := &testenv.HookReader{R: bytes.NewReader(c.data), After: 768 << 10, Hook: func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n, _ := c.rec.counts(); n > 0 {
				break
			}
		}
		fault()
		close(reached)
	}}
	done := make(chan error, 1)
	go func() { done <- c.st.Put(ctx, store.Object{Key: c.key, Size: int64(len(c.data))}, src) }()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("Put ended before the fault: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the upload never reached the fault")
	}
	if n, _ := c.rec.counts(); n == 0 {
		t.Fatal("no chunk was taken before the fault")
	}
	return done
}

func (c *faultCase) nothingVisible(t *testing.T) {
	t.Helper()
	l, err := c.direct.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Objects) != 0 {
		t.Errorf("after the failed upload the bucket lists %+v", l.Objects)
	}
}

// Google stops answering mid-upload with the connection left open: the stall watcher cuts each
// try of the chunk, its retry deadline passes, and Put fails in bounded time naming the
// destination and what stalled; nothing is visible.
func TestFaultStalledMidUpload(t *testing.T) {
	c := newFaultCase(t)
	start := time.Now()
	done := c.put(t, context.Background(), func() { c.proxy.AddToxic(t, "timeout", "downstream", map[string]any{"timeout": 0}) })
	err := testenv.Within(t, done, 2*time.Minute)
	if err == nil {
		t.Fatal("Put succeeded through a stalled connection")
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{"put gs://" + c.st.name + "/pg/" + c.key + ": ", "stalled", "session"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "upload_id") {
		t.Errorf("the error shows the session's URI: %v", err)
	}
	c.nothingVisible(t)
}

// A connection reset mid-upload: for a moment, the chunk's retries carry the upload through and
// the object is whole; for good, Put fails naming the destination and nothing is visible.
func TestFaultResetMidUpload(t *testing.T) {
	t.Run("for a moment", func(t *testing.T) {
		c := newFaultCase(t)
		healed := make(chan struct{})
		done := c.put(t, context.Background(), func() {
			name := c.proxy.AddToxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0})
			time.AfterFunc(time.Second, func() { c.proxy.RemoveToxic(t, name); close(healed) })
		})
		defer func() { <-healed }()
		if err := testenv.Within(t, done, 2*time.Minute); err != nil {
			t.Fatalf("Put across a reset: %v", err)
		}
		rc, _, err := c.direct.Open(context.Background(), c.key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if got, _ := io.ReadAll(rc); !bytes.Equal(got, c.data) {
			t.Errorf("the object holds %d bytes that differ from the %d sent", len(got), len(c.data))
		}
	})
	t.Run("for good", func(t *testing.T) {
		c := newFaultCase(t)
		done := c.put(t, context.Background(), func() { c.proxy.AddToxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0}) })
		err := testenv.Within(t, done, 2*time.Minute)
		if err == nil {
			t.Fatal("Put succeeded through a link that resets every connection")
		}
		t.Logf("Put: %v", err)
		if !strings.Contains(err.Error(), "put gs://"+c.st.name+"/pg/"+c.key+": ") || strings.Contains(err.Error(), "upload_id") {
			t.Errorf("the error does not name the object, or shows the session: %v", err)
		}
		c.nothingVisible(t)
	})
}

// SIGTERM mid-upload (the run's context cancelled): Put returns at once with the context's
// error, nothing is visible, and the resumable session is cancelled with a DELETE, which Google
// (and the emulator) answer 499.
func TestFaultCancelMidUpload(t *testing.T) {
	c := newFaultCase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled time.Time
	done := c.put(t, ctx, func() { cancelled = time.Now(); cancel() })
	err := testenv.Within(t, done, time.Minute)
	if took := time.Since(cancelled); took > 5*time.Second {
		t.Errorf("Put returned %s after the cancel", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want the context's error", err)
	}
	t.Logf("Put: %v", err)
	if !strings.Contains(err.Error(), "session is cancelled") {
		t.Errorf("the error does not say the session is cancelled: %v", err)
	}
	if _, cancels := c.rec.counts(); len(cancels) != 1 || cancels[0] != statusClientClosed {
		t.Errorf("the session's cancels were answered %v, want one 499", cancels)
	}
	c.nothingVisible(t)
}
