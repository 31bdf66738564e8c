package filestore

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// The helper process is a run uploading into a file store: it writes part of an object, says
// "writing" on stdout, and waits for more bytes on stdin that never come.
const helperEnv = "FILESTORE_TEST_UPLOADER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		uploader(dir)
		return
	}
	os.Exit(m.Run())
}

func uploader(dir string) {
	s, err := New(dir)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	first := strings.NewReader(strings.Repeat("x", 4096))
	r := io.MultiReader(first, announce{}, os.Stdin)
	err = s.Put(context.Background(), store.Object{Key: "shop/DATABASE_URL/b001.dump", Size: 1 << 20}, r)
	os.Stderr.WriteString("put returned: " + errString(err))
	os.Exit(4)
}

// announce prints "writing" once the first bytes are in the temporary file, then ends.
type announce struct{}

func (announce) Read([]byte) (int, error) {
	os.Stdout.WriteString("writing\n")
	return 0, io.EOF
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// startUploader starts a helper process and returns once its temporary file exists. Its stdin
// is returned so the test can keep it blocked; the process is killed at the end of the test.
func startUploader(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		stdin.Close()
	})
	said := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		said <- line
	}()
	select {
	case line := <-said:
		if line != "writing\n" {
			t.Fatalf("uploader said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the uploader did not start writing within 30 s")
	}
	return cmd
}

// temps lists the temporary files under dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, e := range entries(t, dir) {
		if isTemp(filepath.Base(e)) {
			out = append(out, filepath.Join(dir, e))
		}
	}
	return out
}

// age makes files look untouched for an hour.
func age(t *testing.T, paths ...string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, p := range paths {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoveStaleAfterSIGKILL(t *testing.T) {
	_, dir := newStore(t)
	killed := startUploader(t, dir)
	if err := killed.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	killed.Wait()
	left := temps(t, dir)
	if len(left) != 1 {
		t.Fatalf("after SIGKILL the store holds temporary files %v, want one", left)
	}

	// A fresh leftover might be a file another run has just created and not yet locked.
	if removed, err := RemoveStale(dir); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale on a fresh leftover = %v, %v; want it kept", removed, err)
	}
	age(t, left...)
	removed, err := RemoveStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != left[0] {
		t.Errorf("RemoveStale removed %v, want %v", removed, left)
	}
	if rest := entries(t, dir); len(rest) != 0 {
		t.Errorf("left behind: %v", rest)
	}
}

func TestRemoveStaleKeepsAnotherRunsUpload(t *testing.T) {
	_, dir := newStore(t)
	killed := startUploader(t, dir)
	killed.Process.Kill()
	killed.Wait()
	stale := temps(t, dir)

	startUploader(t, dir) // a second job, still uploading
	var live []string
	for _, p := range temps(t, dir) {
		if p != stale[0] {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		t.Fatalf("temporary files %v, want the stale one and one live", temps(t, dir))
	}
	// Idle for an hour (a stalled download), but its writer is alive: it must stay.
	age(t, stale[0], live[0])

	removed, err := RemoveStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale[0] {
		t.Errorf("RemoveStale removed %v, want only %v", removed, stale)
	}
	if _, err := os.Stat(live[0]); err != nil {
		t.Errorf("the running upload's temporary file is gone: %v", err)
	}
}

func TestRemoveStaleKeepsInProcessPutAndItsResult(t *testing.T) {
	s, dir := newStore(t)
	pr, pw := io.Pipe()
	data := randomBytes(t, 8192)
	done := make(chan error, 1)
	go func() {
		done <- s.Put(context.Background(), store.Object{Key: "a/b.dump", Size: int64(len(data))}, pr)
	}()
	if _, err := pw.Write(data[:4096]); err != nil { // returns once Put has read it
		t.Fatal(err)
	}
	live := temps(t, dir)
	if len(live) != 1 {
		t.Fatalf("temporary files %v, want one", live)
	}
	// No age at all: only the lock can keep the file.
	if removed, err := removeStale(dir, 0); err != nil || len(removed) != 0 {
		t.Fatalf("removeStale = %v, %v; want the in-progress file kept", removed, err)
	}
	pw.Write(data[4096:])
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("Put after RemoveStale: %v", err)
	}
	got, err := os.ReadFile(s.Location("a/b.dump"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("object after RemoveStale: %d bytes, %v", len(got), err)
	}
}

func TestRemoveStaleLeavesOtherFiles(t *testing.T) {
	s, dir := newStore(t)
	if err := s.Put(context.Background(), store.Object{Key: "x/y.dump", Size: 3}, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	other := []string{filepath.Join(dir, "x", ".hidden"), filepath.Join(dir, "notes.tmp-1"), filepath.Join(dir, "x", "y.dump")}
	for _, p := range other[:2] {
		if err := os.WriteFile(p, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	age(t, other...)
	if removed, err := RemoveStale(dir); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale = %v, %v; want nothing removed", removed, err)
	}
	for _, p := range other {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
