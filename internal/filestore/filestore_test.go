package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archives")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
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

// TestNewRefusesMissingDir: a missing directory (a volume not mounted) is an error naming it and
// the fix, and nothing is created: archives must not land on the disk beneath a mount point.
func TestNewRefusesMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt", "archive")
	_, err := New(dir)
	if !errors.Is(err, ErrNoDirectory) || !strings.Contains(err.Error(), "mkdir -p "+dir) || !strings.Contains(err.Error(), "ARCHIVE_URL") {
		t.Fatalf("New(%s) = %v, want ErrNoDirectory naming it and mkdir -p", dir, err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New created %s (or its parent): %v", dir, err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("New(a file) = %v", err)
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

func mustStat(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
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

// A marker outside the directory is not looked up.
func TestMarkerOutsideRefused(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.MarkerExists(context.Background(), "../outside"); err == nil {
		t.Error("a key outside the directory was looked up")
	}
}
