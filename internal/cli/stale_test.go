package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A SIGKILLed run leaves a hidden temporary file in a file:// archive; the next run removes it
// and says so, while a file another job holds locked (it is still uploading) stays.
func TestBackupFileRemovesStaleTemps(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	dir := t.TempDir()
	sub := filepath.Join(dir, "shop", "DATABASE_URL")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(sub, ".b001.dump.tmp-1234567")
	live := filepath.Join(sub, ".b002.dump.tmp-7654321")
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	env := w.env("shop")
	env["ARCHIVE_URL"] = "file://" + dir
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there (%v)", err)
	}
	if !strings.Contains(out, "removed a temporary file an interrupted earlier run left behind") || !strings.Contains(out, stale) {
		t.Error("the log does not name the removed file")
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the locked temporary file of another job was removed: %v", err)
	}
}
