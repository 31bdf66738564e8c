// Package faulttest is the network-fault suite of a destination kind (fault-checklist.md): an
// upload through Toxiproxy meets a stalled connection, a reset for a moment, a reset for good
// and a cancel (the SIGTERM path), each injected once the upload has reached the server and
// before the rest of the archive is read, and HTML pages answered by something in the way.
// Every failure must come in bounded time, say which object failed, and leave nothing visible.
package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Instance is one fresh destination, written through Proxy and looked at directly.
type Instance struct {
	Store store.Store // through Proxy, with short stall limits and retries bounded in seconds
	Proxy *testenv.Proxy
	// Direct reads the same place without the proxy.
	Direct store.Reader
	// Reached tells that the upload has reached the server (a block staged, a chunk taken).
	Reached func() bool
}

// Kind is a kind under the suite.
type Kind struct {
	Open func(t *testing.T) Instance
	// Size of the archive and After, the bytes read before the fault: more than one part, so
	// that the fault meets a multipart upload in the middle.
	Size, After int
	// Says are what every failed upload's error says besides the object's location (what is
	// left, and for how long).
	Says []string
	// Hidden are what no error may show (a secret's shape).
	Hidden []string
	// Cancelled checks what a cancelled upload left on the server, beyond nothing visible.
	Cancelled func(t *testing.T, i Instance, key string)
	// OpenAt opens the kind at endpoint (http://127.0.0.1:PORT), where something else than the
	// store answers; NotTheStore is what the error then says.
	OpenAt      func(t *testing.T, endpoint string) store.Store
	NotTheStore string
}

const key = "shop/DATABASE_URL/b001.dump"

// Run runs the suite.
func Run(t *testing.T, k Kind) {
	t.Run("StalledMidUpload", func(t *testing.T) { stalled(t, k) })
	t.Run("ResetForAMoment", func(t *testing.T) { resetForAMoment(t, k) })
	t.Run("ResetForGood", func(t *testing.T) { resetForGood(t, k) })
	t.Run("CancelledMidUpload", func(t *testing.T) { cancelled(t, k) })
	t.Run("HTMLAnswers", func(t *testing.T) { htmlAnswers(t, k) })
}

// A proxy or captive portal in the way answers with an HTML page, as a success or as a 502: Put
// fails in bounded time naming the object and saying the store did not answer, and never takes
// the page for a stored object or an existing one.
func htmlAnswers(t *testing.T, k Kind) {
	for _, status := range []int{http.StatusOK, http.StatusCreated, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			w.Write([]byte("<html><body>Gateway says hello</body></html>"))
		}))
		st := k.OpenAt(t, srv.URL)
		for _, size := range []int{3, k.After + 1} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := st.Put(ctx, store.Object{Key: key, Size: int64(size)}, bytes.NewReader(make([]byte, size)))
			cancel()
			t.Logf("%d, %d bytes: %v", status, size, err)
			if err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, context.DeadlineExceeded) ||
				!strings.Contains(err.Error(), st.Location(key)) || !strings.Contains(err.Error(), k.NotTheStore) {
				t.Errorf("%d, %d bytes: Put = %v", status, size, err)
			}
		}
		srv.Close()
	}
}

// put runs Put of k.Size random bytes in the background; fault runs once After bytes were read
// and the upload reached the server, before the rest is read.
func put(t *testing.T, ctx context.Context, k Kind, i Instance, fault func()) (data []byte, done <-chan error) {
	t.Helper()
	data = make([]byte, k.Size)
	rand.Read(data)
	reached := make(chan struct{})
	src := &testenv.HookReader{R: bytes.NewReader(data), After: k.After, Hook: func() {
		for deadline := time.Now().Add(20 * time.Second); !i.Reached() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		fault()
		close(reached)
	}}
	ch := make(chan error, 1)
	go func() { ch <- i.Store.Put(ctx, store.Object{Key: key, Size: int64(len(data))}, src) }()
	select {
	case <-reached:
	case err := <-ch:
		t.Fatalf("Put ended before the fault: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the upload never reached the fault")
	}
	if !i.Reached() {
		t.Fatal("the upload had not reached the server at the fault")
	}
	return data, ch
}

// failed checks a failed upload's error: it names the object and says what k says.
func failed(t *testing.T, k Kind, i Instance, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Put succeeded")
	}
	t.Logf("Put: %v", err)
	for _, want := range append([]string{i.Store.Location(key)}, k.Says...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	for _, secret := range k.Hidden {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows %q: %v", secret, err)
		}
	}
	nothingVisible(t, i)
}

// direct bounds a look at the destination past the proxy: the emulator itself may not hang
// the suite either.
func direct(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nothingVisible(t *testing.T, i Instance) {
	t.Helper()
	l, err := i.Direct.List(direct(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Objects) != 0 {
		t.Errorf("after the failed upload the destination lists %+v", l.Objects)
	}
}

// The server stops answering with the connections left open: every try is cut by the stall
// watcher, the retries run out, and Put fails in bounded time saying what stalled.
func stalled(t *testing.T, k Kind) {
	i := k.Open(t)
	start := time.Now()
	_, done := put(t, context.Background(), k, i, func() { i.Proxy.AddToxic(t, "timeout", "downstream", map[string]any{"timeout": 0}) })
	err := testenv.Within(t, done, 2*time.Minute)
	t.Logf("after %s", time.Since(start).Round(time.Millisecond))
	failed(t, k, i, err)
	if err != nil && !strings.Contains(err.Error(), "stalled") {
		t.Errorf("the error does not say it stalled: %v", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the error is a context's: %v", err)
	}
}

// Every connection is reset for a second: the retries carry the upload through, whole.
func resetForAMoment(t *testing.T, k Kind) {
	i := k.Open(t)
	healed := make(chan struct{})
	data, done := put(t, context.Background(), k, i, func() {
		name := i.Proxy.AddToxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0})
		time.AfterFunc(time.Second, func() { i.Proxy.RemoveToxic(t, name); close(healed) })
	})
	defer func() { <-healed }()
	if err := testenv.Within(t, done, 2*time.Minute); err != nil {
		t.Fatalf("Put across a reset: %v", err)
	}
	rc, _, err := i.Direct.Open(direct(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Errorf("the object holds %d bytes that differ from the %d sent (%v)", got.Len(), len(data), err)
	}
}

// Every connection is reset until the end: Put fails cleanly.
func resetForGood(t *testing.T, k Kind) {
	i := k.Open(t)
	_, done := put(t, context.Background(), k, i, func() { i.Proxy.AddToxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0}) })
	failed(t, k, i, testenv.Within(t, done, 2*time.Minute))
}

// The run's context is cancelled mid-upload: Put returns at once with the context's error.
func cancelled(t *testing.T, k Kind) {
	i := k.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var at time.Time
	_, done := put(t, ctx, k, i, func() { at = time.Now(); cancel() })
	err := testenv.Within(t, done, time.Minute)
	if took := time.Since(at); took > 5*time.Second {
		t.Errorf("Put returned %s after the cancel", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want the context's error", err)
	}
	failed(t, k, i, err)
	if k.Cancelled != nil {
		k.Cancelled(t, i, key)
	}
}
