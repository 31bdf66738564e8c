// Package storetest is the one conformance suite of the store contract: every destination kind
// (a directory, SFTP, S3, the in-memory kind) runs Run against a real instance, so that each one
// keeps the promises of store.Store and store.Reader, and does what each capability it declares
// in its Caps says.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind opens destinations of one kind for the suite.
type Kind struct {
	// Open gives a fresh, empty destination.
	Open func(t *testing.T) Instance
	// Want lists the capabilities the kind must declare, so that one left out fails the suite
	// instead of silently losing what it does.
	Want Want
}

// Instance is one destination opened for the suite.
type Instance struct {
	Store store.Store
	Caps  store.Caps // as the kind declares them when opened for writing
	// Reader reads the same place: Caps.Reader, or for a kind whose writer may not read, one
	// opened with credentials that may.
	Reader store.Reader
	// Leftovers, when set, lists what the destination holds that is no object: temporary
	// files, open multipart uploads. A failed Put must leave none.
	Leftovers func(t *testing.T) []string
}

// Want names the capabilities a kind declares.
type Want struct {
	Reader, Markers, Records, Stale, Remove, Abort, ConditionalWrites, Close bool
}

// timeout bounds each operation of the suite: generous for a loaded machine.
const timeout = time.Minute

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return c
}

// Run runs the suite against k.
func Run(t *testing.T, k Kind) {
	t.Run("Declares", func(t *testing.T) { declares(t, k) })
	for _, size := range []struct {
		name string
		n    int
	}{{"Empty", 0}, {"Small", 1 << 10}, {"Large", 3 << 20}} {
		t.Run("PutKnownSize"+size.name, func(t *testing.T) { roundTrip(t, k, size.n, false) })
		t.Run("PutUnknownSize"+size.name, func(t *testing.T) { roundTrip(t, k, size.n, true) })
	}
	t.Run("ExistingKeyIsKept", func(t *testing.T) { existingKept(t, k, false) })
	t.Run("ConcurrentPutsOneWins", func(t *testing.T) { concurrentPuts(t, k) })
	t.Run("ExistingKeyIsKeptUnknownSize", func(t *testing.T) { existingKept(t, k, true) })
	t.Run("FailuresLeaveNothing", func(t *testing.T) { failuresLeaveNothing(t, k) })
	t.Run("OtherNegativeSizesAreRefused", func(t *testing.T) { negativeSize(t, k) })
	t.Run("ListIsSortedAndPrefixOnly", func(t *testing.T) { list(t, k) })
	t.Run("OpenMissingFails", func(t *testing.T) { openMissing(t, k) })
	t.Run("Markers", func(t *testing.T) { markers(t, k) })
	t.Run("Records", func(t *testing.T) { records(t, k) })
	t.Run("Remove", func(t *testing.T) { remove(t, k) })
	t.Run("RemoveStale", func(t *testing.T) { removeStale(t, k) })
	t.Run("ConditionalWrites", func(t *testing.T) { conditional(t, k) })
	t.Run("Abort", func(t *testing.T) { abort(t, k) })
}

func declares(t *testing.T, k Kind) {
	i := k.Open(t)
	c := i.Caps
	for _, d := range []struct {
		name       string
		want, have bool
	}{
		{"Reader", k.Want.Reader, c.Reader != nil},
		{"Markers", k.Want.Markers, c.Markers != nil},
		{"Records", k.Want.Records, c.Records != nil},
		{"Stale", k.Want.Stale, c.Stale != nil},
		{"Remove", k.Want.Remove, c.Remove != nil},
		{"Abort", k.Want.Abort, c.Abort != nil},
		{"ConditionalWritesUnsupported", k.Want.ConditionalWrites, c.ConditionalWritesUnsupported != nil},
		{"Close", k.Want.Close, c.Close != nil},
	} {
		if d.want != d.have {
			t.Errorf("Caps.%s declared %v, want %v", d.name, d.have, d.want)
		}
	}
}

func data(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// put writes body at key with its exact size, or as a stream of unknown size.
func put(ctx context.Context, s store.Store, key string, body []byte, unknown bool) error {
	size := int64(len(body))
	if unknown {
		size = store.UnknownSize
	}
	return s.Put(ctx, store.Object{Key: key, Size: size, ContentType: "application/octet-stream"}, iotest.HalfReader(bytes.NewReader(body)))
}

// read gives the object at key and the size Open announced.
func read(t *testing.T, r store.Reader, key string) ([]byte, int64) {
	t.Helper()
	rc, size, err := r.Open(ctx(t), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, size
}

// keys lists every key the destination shows.
func keys(t *testing.T, r store.Reader) []string {
	t.Helper()
	l, err := r.List(ctx(t), "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return l.Keys()
}

func roundTrip(t *testing.T, k Kind, n int, unknown bool) {
	i := k.Open(t)
	s, r := i.Store, i.Reader
	body := data(n, int64(n))
	const key = "shop/DATABASE_URL/b001.dump"
	if err := put(ctx(t), s, key, body, unknown); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, size := read(t, r, key)
	if !bytes.Equal(got, body) || size != int64(n) {
		t.Errorf("read back %d bytes (Open said %d), want the %d written", len(got), size, n)
	}
	l, err := r.List(ctx(t), "shop/")
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := l.Find(key); !ok || info.Size != int64(n) || info.Modified.IsZero() {
		t.Errorf("listed %+v (found %v), want size %d and a modification time", info, ok, n)
	}
	if loc := s.Location(key); !strings.HasSuffix(loc, key) {
		t.Errorf("Location(%s) = %s", key, loc)
	}
}

func existingKept(t *testing.T, k Kind, unknown bool) {
	i := k.Open(t)
	s, r := i.Store, i.Reader
	const key = "shop/DATABASE_URL/b002.dump"
	first := data(2048, 1)
	if err := put(ctx(t), s, key, first, unknown); err != nil {
		t.Fatal(err)
	}
	err := put(ctx(t), s, key, data(4096, 2), unknown)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Put: %v, want ErrExists", err)
	}
	if got, _ := read(t, r, key); !bytes.Equal(got, first) {
		t.Errorf("the first object was replaced (%d bytes now)", len(got))
	}
}

func concurrentPuts(t *testing.T, k Kind) {
	i := k.Open(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := data(256<<10, int64(100+j))
			errs[j] = i.Store.Put(ctx(t), store.Object{Key: "same", Size: int64(len(body))}, iotest.HalfReader(bytes.NewReader(body)))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for j, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("Puts %d and %d both succeeded", winner, j)
		case err == nil:
			winner = j
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("Put %d: %v", j, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Put succeeded")
	}
	if got, _ := read(t, i.Reader, "same"); !bytes.Equal(got, data(256<<10, int64(100+winner))) {
		t.Error("the object does not hold the winner's bytes")
	}
	if i.Leftovers != nil {
		if left := i.Leftovers(t); len(left) != 0 {
			t.Errorf("the losers left %v", left)
		}
	}
}

// failing yields n bytes, then fails.
func failing(n int) io.Reader {
	return io.MultiReader(bytes.NewReader(data(n, 3)), iotest.ErrReader(errors.New("source broke")))
}

func failuresLeaveNothing(t *testing.T, k Kind) {
	i := k.Open(t)
	s, r := i.Store, i.Reader
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		obj  store.Object
		r    io.Reader
	}{
		{"ShortSource", ctx(t), store.Object{Key: "a/short", Size: 4096}, bytes.NewReader(data(1000, 4))},
		{"LongSource", ctx(t), store.Object{Key: "a/long", Size: 1000}, bytes.NewReader(data(4096, 5))},
		{"SourceFails", ctx(t), store.Object{Key: "a/fails", Size: 8192}, failing(3000)},
		{"SourceFailsUnknownSize", ctx(t), store.Object{Key: "a/fails-unknown", Size: store.UnknownSize}, failing(3000)},
		{"SourceFailsAtOnce", ctx(t), store.Object{Key: "a/fails-at-once", Size: store.UnknownSize}, failing(0)},
		{"Cancelled", cancelled, store.Object{Key: "a/cancelled", Size: 100}, bytes.NewReader(data(100, 6))},
		{"CancelledUnknownSize", cancelled, store.Object{Key: "a/cancelled-unknown", Size: store.UnknownSize}, bytes.NewReader(data(100, 6))},
	} {
		if err := s.Put(c.ctx, c.obj, c.r); err == nil {
			t.Errorf("%s: Put succeeded", c.name)
		} else if strings.HasPrefix(c.name, "Short") || strings.HasPrefix(c.name, "Long") {
			if !errors.Is(err, store.ErrSizeMismatch) {
				t.Errorf("%s: %v, want ErrSizeMismatch", c.name, err)
			}
		}
	}
	midway, cancelMidway := context.WithCancel(ctx(t))
	body := data(1<<20, 13)
	err := s.Put(midway, store.Object{Key: "a/cancelled-midway", Size: int64(len(body))},
		&cancelAfter{r: iotest.HalfReader(bytes.NewReader(body)), n: len(body) / 3, cancel: cancelMidway})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CancelledMidway: %v, want context.Canceled", err)
	}
	if left := keys(t, r); len(left) != 0 {
		t.Errorf("failed writes left %v", left)
	}
	if i.Leftovers != nil {
		if left := i.Leftovers(t); len(left) != 0 {
			t.Errorf("failed writes left %v", left)
		}
	}
}

// cancelAfter cancels its context once n bytes have been read, and keeps yielding data.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func negativeSize(t *testing.T, k Kind) {
	i := k.Open(t)
	s, r := i.Store, i.Reader
	if err := s.Put(ctx(t), store.Object{Key: "a/neg", Size: -2}, bytes.NewReader(nil)); err == nil {
		t.Error("Put with size -2 succeeded")
	}
	if left := keys(t, r); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

func list(t *testing.T, k Kind) {
	i := k.Open(t)
	s, r := i.Store, i.Reader
	written := []string{"b/1", "a/2", "ab/3", "a/1", "a/c/4"}
	for i, key := range written {
		if err := put(ctx(t), s, key, data(10+i, int64(i)), false); err != nil {
			t.Fatal(err)
		}
	}
	all := slices.Clone(written)
	slices.Sort(all)
	if got := keys(t, r); !slices.Equal(got, all) {
		t.Errorf("List(\"\") = %v, want %v", got, all)
	}
	l, err := r.List(ctx(t), "a/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/1", "a/2", "a/c/4"}; !slices.Equal(l.Keys(), want) {
		t.Errorf("List(a/) = %v, want %v", l.Keys(), want)
	}
	for _, o := range l.Objects {
		if i := slices.Index(written, o.Key); o.Size != int64(10+i) {
			t.Errorf("%s listed with size %d, want %d", o.Key, o.Size, 10+i)
		}
	}
	if l, err := r.List(ctx(t), "none/"); err != nil || len(l.Objects) != 0 {
		t.Errorf("List(none/) = %v, %v", l.Keys(), err)
	}
}

func openMissing(t *testing.T, k Kind) {
	i := k.Open(t)
	r := i.Reader
	if rc, _, err := r.Open(ctx(t), "no/such.dump"); err == nil {
		rc.Close()
		t.Error("Open of a missing key succeeded")
	}
}

func markers(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c := i.Store, i.Caps
	if c.Markers == nil {
		t.Skip("the kind declares no markers")
	}
	const key = "_pgoffsite-retention/shop/DATABASE_URL/monthly/2026-01"
	if ok, err := c.Markers.MarkerExists(ctx(t), key); err != nil || ok {
		t.Fatalf("before: %v, %v", ok, err)
	}
	if err := put(ctx(t), s, key, nil, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Markers.MarkerExists(ctx(t), key); err != nil || !ok {
		t.Errorf("after: %v, %v", ok, err)
	}
	if ok, err := c.Markers.MarkerExists(ctx(t), key[:len(key)-1]); err != nil || ok {
		t.Errorf("a prefix of the marker: %v, %v", ok, err)
	}
}

func records(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c, r := i.Store, i.Caps, i.Reader
	if c.Records == nil {
		t.Skip("the kind declares no records")
	}
	// A record is kept beside its archive.
	const archive, key = "shop/DATABASE_URL/b001.dump", "shop/DATABASE_URL/b001.dump.verified.json"
	if err := put(ctx(t), s, archive, data(10, 12), false); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"passed":false}`, `{"passed":true,"tables":3}`} {
		if err := c.Records.Replace(ctx(t), key, []byte(body)); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		if got, _ := read(t, r, key); string(got) != body {
			t.Errorf("record %q, want %q", got, body)
		}
	}
	if got := keys(t, r); !slices.Equal(got, []string{archive, key}) {
		t.Errorf("left %v, want the archive and its record", got)
	}
}

func remove(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c, r := i.Store, i.Caps, i.Reader
	if c.Remove == nil {
		t.Skip("the kind declares no Remove")
	}
	const key = "shop/DATABASE_URL/b003.dump"
	if err := put(ctx(t), s, key, data(100, 7), false); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second time the object is gone: not an error
		if err := c.Remove.Remove(ctx(t), key); err != nil {
			t.Fatalf("Remove %d: %v", i+1, err)
		}
	}
	if left := keys(t, r); len(left) != 0 {
		t.Errorf("left %v", left)
	}
	// The key may be written again.
	if err := put(ctx(t), s, key, data(100, 8), false); err != nil {
		t.Errorf("Put after Remove: %v", err)
	}
}

func removeStale(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c, r := i.Store, i.Caps, i.Reader
	if c.Stale == nil {
		t.Skip("the kind declares no stale removal")
	}
	if err := put(ctx(t), s, "shop/x.dump", data(10, 9), false); err != nil {
		t.Fatal(err)
	}
	// Nothing is stale in a destination written only by completed Puts, and nothing is taken.
	removed, err := c.Stale.RemoveStale(ctx(t))
	if err != nil || len(removed) != 0 {
		t.Errorf("RemoveStale = %v, %v", removed, err)
	}
	if got := keys(t, r); !slices.Equal(got, []string{"shop/x.dump"}) {
		t.Errorf("left %v", got)
	}
}

func conditional(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c := i.Store, i.Caps
	if c.ConditionalWritesUnsupported == nil {
		t.Skip("the kind always refuses to overwrite")
	}
	if err := put(ctx(t), s, "a/x", data(10, 10), false); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx(t), s, "a/x", data(10, 11), false); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Put: %v, want ErrExists", err)
	}
	if c.ConditionalWritesUnsupported() {
		t.Error("a store honouring If-None-Match is said not to")
	}
}

func abort(t *testing.T, k Kind) {
	i := k.Open(t)
	s, c := i.Store, i.Caps
	if c.Abort == nil {
		t.Skip("the kind declares no abort")
	}
	// An upload logged for another destination is not this one's to abort.
	if ok, err := c.Abort.AbortUpload(ctx(t), "elsewhere://bucket/a/x.dump", "upload-1"); ok || err != nil {
		t.Errorf("another destination's upload: %v, %v", ok, err)
	}
	// One already gone (completed or aborted) is aborted as far as anyone can tell.
	if ok, err := c.Abort.AbortUpload(ctx(t), s.Location("a/x.dump"), "no-such-upload"); !ok || err != nil {
		t.Errorf("an upload that is gone: %v, %v", ok, err)
	}
}

// Unlisted are the files of a destination kept as a tree (relative, slash separated) that r does
// not list as objects: temporary files of any name, for a kind's Leftovers.
func Unlisted(t *testing.T, r store.Reader, files []string) []string {
	t.Helper()
	l, err := r.List(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range files {
		if !slices.Contains(l.Keys(), f) {
			left = append(left, f)
		}
	}
	return left
}
