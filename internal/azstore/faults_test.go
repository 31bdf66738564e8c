package azstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// faultCase is a container on Azurite reached through Toxiproxy, with the account key (Azurite
// wants write permission for staged blocks), blocks of 1 MiB, two in flight.
type faultCase struct {
	az     *testenv.Azurite
	proxy  *testenv.Proxy
	st     *Store // through the proxy
	direct *Store // straight to Azurite: what the test looks at
	key    string
	data   []byte
}

func newFaultCase(t *testing.T) *faultCase {
	t.Helper()
	az := testenv.StartAzurite(t)
	c := az.NewContainer(t)
	upstream := strings.TrimSuffix(strings.TrimPrefix(az.ServiceURL, "http://"), "/"+testenv.AzuriteAccount)
	p := testenv.StartToxiproxy(t).Proxy(t, upstream)
	st, err := Open(Options{Settings: Settings{Account: testenv.AzuriteAccount, Container: c, Prefix: "pre/fix",
		Endpoint: "http://" + p.Listen + "/" + testenv.AzuriteAccount},
		Credentials: Credentials{AccountKey: testenv.AzuriteKey}, PartSize: testPartSize, Parts: 2,
		Stall: stall.Options{Idle: 500 * time.Millisecond, Header: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 6*testPartSize+123)
	rand.Read(data)
	return &faultCase{az: az, proxy: p, st: st, direct: openAzurite(t, az, c, Credentials{AccountKey: testenv.AzuriteKey}, testPartSize),
		key: "shop/DATABASE_URL/b001.dump", data: data}
}

// uncommitted is the number of blocks staged for the key and not committed.
func (c *faultCase) uncommitted(t *testing.T) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.direct.c.NewBlockBlobClient(c.direct.full(c.key)).GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	if err != nil {
		return 0
	}
	return len(l.UncommittedBlocks)
}

// visible fails t if the key is listed: a failed upload publishes nothing.
func (c *faultCase) nothingVisible(t *testing.T) {
	t.Helper()
	l, err := c.direct.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Objects) != 0 {
		t.Errorf("after the failed upload the container lists %+v", l.Objects)
	}
}

// put runs Put in the background; once two blocks' worth was read and a block is staged on
// Azurite, fault runs (before the rest is read).
func (c *faultCase) put(t *testing.T, ctx context.Context, fault func()) <-chan error {
	t.Helper()
	reached := make(chan struct{})
	src := &testenv.HookReader{R: bytes.NewReader(c.data), After: 2 * testPartSize, Hook: func() {
		for deadline := time.Now().Add(20 * time.Second); c.uncommitted(t) == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
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
	return done
}

// Azure stops answering mid-upload with the connections left open: every try of the blocks in
// flight is cut by the stall watcher, the retries run out, and Put fails in bounded time naming
// the block and the destination; nothing is visible and the error says what becomes of the
// blocks already staged.
func TestFaultStalledMidUpload(t *testing.T) {
	c := newFaultCase(t)
	start := time.Now()
	done := c.put(t, context.Background(), func() { c.proxy.AddToxic(t, "timeout", "downstream", map[string]any{"timeout": 0}) })
	err := testenv.Within(t, done, 2*time.Minute)
	if err == nil {
		t.Fatal("Put succeeded through a stalled connection")
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{"azblob://" + testenv.AzuriteAccount + "/", "/pre/fix/" + c.key, "stalled", "discards them within 7 days"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the error is a context's: %v", err)
	}
	c.nothingVisible(t)
}

// A connection reset mid-upload: while the link resets for a moment the SDK's retries carry the
// blocks over and the blob is whole; when it keeps resetting Put fails naming the destination
// and nothing is visible.
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
			t.Errorf("the blob holds %d bytes that differ from the %d sent", len(got), len(c.data))
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
		if !strings.Contains(err.Error(), "/pre/fix/"+c.key) || !strings.Contains(err.Error(), "within 7 days") {
			t.Errorf("the error does not name the blob and what is left: %v", err)
		}
		c.nothingVisible(t)
	})
}

// SIGTERM mid-upload (the run's context cancelled): Put returns at once with the context's
// error, commits nothing, and what Azurite holds is uncommitted blocks alone, which Azure
// discards within 7 days, as the error says.
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
	if !strings.Contains(err.Error(), "discards them within 7 days") {
		t.Errorf("the error does not say what is left: %v", err)
	}
	c.nothingVisible(t)
	if n := c.uncommitted(t); n == 0 {
		t.Error("Azurite holds no uncommitted block: the test did not cancel mid-upload")
	} else {
		t.Logf("left: %d uncommitted blocks, invisible", n)
	}
}
