package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archives")
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// entries lists every file under dir (relative paths), so a test can see leftovers of any name.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewRejectsRelativeDir(t *testing.T) {
	if _, err := New("relative/dir"); err == nil {
		t.Fatal("New accepted a relative directory")
	}
}

func TestNewCreatesPrivateDir(t *testing.T) {
	_, dir := newStore(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %o, want 700", perm)
	}
}

func TestPutSuccess(t *testing.T) {
	s, dir := newStore(t)
	data := randomBytes(t, 3<<20+17)
	obj := store.Object{Key: "app/db/2024-01-01.dump", Size: int64(len(data)), ContentType: "application/octet-stream"}
	if err := s.Put(context.Background(), obj, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	loc := s.Location(obj.Key)
	if want := filepath.Join(dir, "app", "db", "2024-01-01.dump"); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	got, err := os.ReadFile(loc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	fi, err := os.Stat(loc)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	if perm := mustStat(t, filepath.Dir(loc)).Mode().Perm(); perm != 0o700 {
		t.Errorf("parent directory mode = %o, want 700", perm)
	}
	if e := entries(t, dir); len(e) != 1 {
		t.Errorf("files in store = %v, want only the object", e)
	}
}

func TestPutEmptyObject(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Put(context.Background(), store.Object{Key: "empty", Size: 0}, strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	if fi := mustStat(t, s.Location("empty")); fi.Size() != 0 {
		t.Errorf("size = %d", fi.Size())
	}
}

func mustStat(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// cancelAfter cancels its context once n bytes have been read and keeps yielding data.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestPutFailuresLeaveNothing(t *testing.T) {
	data := randomBytes(t, 1<<20)
	boom := errors.New("connection reset")
	cases := []struct {
		name    string
		size    int64
		reader  func(cancel context.CancelFunc) io.Reader
		wantErr error
	}{
		{"reader error", int64(len(data)), func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
		}, boom},
		{"short reader", int64(len(data)) + 1, func(context.CancelFunc) io.Reader {
			return bytes.NewReader(data)
		}, store.ErrSizeMismatch},
		{"long reader", int64(len(data)) - 1, func(context.CancelFunc) io.Reader {
			return bytes.NewReader(data)
		}, store.ErrSizeMismatch},
		{"cancelled midway", int64(len(data)), func(cancel context.CancelFunc) io.Reader {
			return &cancelAfter{r: iotest.HalfReader(bytes.NewReader(data)), n: len(data) / 3, cancel: cancel}
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { failedPutLeavesNothing(t, tc.size, tc.reader, tc.wantErr) })
	}
}

func TestPutCancelledBeforeStart(t *testing.T) {
	s, dir := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Put(ctx, store.Object{Key: "k", Size: 3}, strings.NewReader("abc"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Fatalf("left behind: %v", e)
	}
}

func TestPutExistingKeyKeepsOriginal(t *testing.T) {
	s, dir := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, store.Object{Key: "x/y", Size: 8}, strings.NewReader("original")); err != nil {
		t.Fatal(err)
	}
	err := s.Put(ctx, store.Object{Key: "x/y", Size: 11}, strings.NewReader("replacement"))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	got, err := os.ReadFile(s.Location("x/y"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("content = %q, want original", got)
	}
	if e := entries(t, dir); len(e) != 1 {
		t.Fatalf("files = %v, want only the original", e)
	}
}

func TestPutRejectsKeysOutsideStore(t *testing.T) {
	s, dir := newStore(t)
	for _, key := range []string{"../escape", "/abs", "a/../../escape", ""} {
		if err := s.Put(context.Background(), store.Object{Key: key, Size: 1}, strings.NewReader("x")); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	if e := entries(t, filepath.Dir(dir)); len(e) != 0 {
		t.Fatalf("files written: %v", e)
	}
}

func TestConcurrentPutsOneWins(t *testing.T) {
	s, dir := newStore(t)
	const n = 8
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = randomBytes(t, 256<<10)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.Put(context.Background(), store.Object{Key: "same", Size: int64(len(payloads[i]))},
				iotest.OneByteReader(bytes.NewReader(payloads[i])))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("Puts %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Put succeeded")
	}
	got, err := os.ReadFile(s.Location("same"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payloads[winner]) {
		t.Fatal("file does not hold the winner's bytes")
	}
	if e := entries(t, dir); len(e) != 1 {
		t.Fatalf("files = %v", e)
	}
}

// An object of unknown size is read to io.EOF, whatever its length, and stored byte for byte.
func TestPutUnknownSize(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 3<<20 + 17} {
		s, dir := newStore(t)
		data := randomBytes(t, n)
		key := "app/unknown.dump"
		if err := s.Put(context.Background(), store.Object{Key: key, Size: store.UnknownSize}, iotest.HalfReader(bytes.NewReader(data))); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := os.ReadFile(s.Location(key))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: stored %d bytes that differ", n, len(got))
		}
		if e := entries(t, dir); len(e) != 1 {
			t.Fatalf("%d bytes: files = %v, want only the object", n, e)
		}
	}
}

func TestPutUnknownSizeFailuresLeaveNothing(t *testing.T) {
	data := randomBytes(t, 1<<20)
	boom := errors.New("pg_dump: error: connection to server lost")
	cases := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		wantErr error
	}{
		{"reader error", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
		}, boom},
		{"reader error at once", func(context.CancelFunc) io.Reader { return iotest.ErrReader(boom) }, boom},
		{"cancelled midway", func(cancel context.CancelFunc) io.Reader {
			return &cancelAfter{r: iotest.HalfReader(bytes.NewReader(data)), n: len(data) / 3, cancel: cancel}
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { failedPutLeavesNothing(t, store.UnknownSize, tc.reader, tc.wantErr) })
	}
}

func TestPutUnknownSizeExistingKeyKeepsOriginal(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, store.Object{Key: "k", Size: store.UnknownSize}, strings.NewReader("original")); err != nil {
		t.Fatal(err)
	}
	err := s.Put(ctx, store.Object{Key: "k", Size: store.UnknownSize}, strings.NewReader("replacement"))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(s.Location("k")); string(got) != "original" {
		t.Fatalf("content = %q, want original", got)
	}
}

// Only store.UnknownSize stands for an unknown length; any other negative size is a mistake.
func TestPutRejectsOtherNegativeSizes(t *testing.T) {
	s, dir := newStore(t)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: -2}, strings.NewReader("x")); err == nil {
		t.Fatal("size -2 accepted")
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Fatalf("files written: %v", e)
	}
}

// failedPutLeavesNothing puts the reader into a new store as an object of size and wants
// wantErr, and nothing in the directory afterwards: no object, no temporary file.
func failedPutLeavesNothing(t *testing.T, size int64, reader func(context.CancelFunc) io.Reader, wantErr error) {
	t.Helper()
	s, dir := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := s.Put(ctx, store.Object{Key: "a/b.dump", Size: size}, reader(cancel))
	if !errors.Is(err, wantErr) {
		t.Fatalf("err = %v, want %v", err, wantErr)
	}
	if e := entries(t, dir); len(e) != 0 {
		t.Fatalf("left behind: %v", e)
	}
}

// RETENTION's markers are files in the directory.
func TestMarkerExists(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	marker := "_pgoffsite-retention/shop/DATABASE/yearly/2026"
	if ok, err := s.MarkerExists(ctx, marker); ok || err != nil {
		t.Errorf("before: %v %v", ok, err)
	}
	if err := s.Put(ctx, store.Object{Key: marker, Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkerExists(ctx, marker); !ok || err != nil {
		t.Errorf("after: %v %v", ok, err)
	}
	if _, err := s.MarkerExists(ctx, "../outside"); err == nil {
		t.Error("a key outside the directory was looked up")
	}
}
