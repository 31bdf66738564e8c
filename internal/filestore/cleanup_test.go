package filestore

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// immutable makes dir immutable (chattr +i: even root may then neither create nor remove
// entries in it, as on a filesystem that refuses changes) until the test ends. It needs root;
// without it the test is skipped, and fails in CI.
func immutable(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		msg := "chattr +i " + dir + ": " + err.Error() + ": " + strings.TrimSpace(string(out)) + " (run the tests as root, as CI does)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	})
}

// hookAfter yields r's bytes and calls hook once, after n of them.
type hookAfter struct {
	r    io.Reader
	n    int
	hook func()
}

func (h *hookAfter) Read(p []byte) (int, error) {
	k, err := h.r.Read(p)
	if h.n -= k; h.n <= 0 && h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return k, err
}

// A failed Put whose temporary file cannot be removed says so by name, and what to do, instead
// of leaving it silently.
func TestFailedPutCleanupRefusedNamesTheFile(t *testing.T) {
	s, dir := newStore(t)
	shop := filepath.Join(dir, "shop")
	boom := errors.New("connection reset")
	src := &hookAfter{r: io.MultiReader(strings.NewReader(strings.Repeat("x", 64<<10)), errReader{boom}), n: 32 << 10,
		hook: func() { immutable(t, shop) }}
	err := s.Put(context.Background(), store.Object{Key: "shop/b001.dump", Size: 1 << 20}, src)
	if !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the source's error", err)
	}
	t.Logf("error: %v", err)
	left := temps(t, dir)
	if len(left) != 1 {
		t.Fatalf("temporary files %v, want the one that could not be removed", left)
	}
	for _, want := range []string{
		"the temporary file " + left[0] + " is left, because removing it failed", "operation not permitted",
		"remove it by hand", "runs of `pgoffsite backup` try again once no run writes it and it has gone a minute without a write",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}

// The removal of interrupted runs' files, refused: the error names the file and says what to
// do, in place of the function's name.
func TestRemoveStaleRefused(t *testing.T) {
	s, dir := newStore(t)
	shop := filepath.Join(dir, "shop")
	os.Mkdir(shop, 0o700)
	stale := filepath.Join(shop, ".b001.dump.tmp-123")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)
	immutable(t, shop)
	removed, err := s.RemoveStale(context.Background())
	if err == nil || len(removed) != 0 {
		t.Fatalf("RemoveStale = %v, %v; want a refusal", removed, err)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"remove the temporary files interrupted runs left in " + dir, stale, "remove what is left by hand"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
