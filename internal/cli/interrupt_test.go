package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
)

// dumpsIn returns the dumps published under dir (temporary files left out), relative.
func dumpsIn(t *testing.T, dir string) []string {
	t.Helper()
	var dumps []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".dump") {
			rel, _ := filepath.Rel(dir, p)
			dumps = append(dumps, filepath.ToSlash(rel))
		}
		return nil
	})
	return dumps
}

// SIGTERM while a slow destination (MinIO behind a bandwidth limit) still uploads, after the
// fast one (a directory) committed the dump: the directory holds the dump and its manifest,
// never the dump alone; nothing is left at the slow one; the run exits 143 within 20 s.
func TestBackupSIGTERMAfterOneCopyCommitted(t *testing.T) {
	w := newWorld(t)
	proxy, _ := w.bigBackupBehindProxy(1000) // ~25 s for the dump
	dir := t.TempDir()
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	env["ARCHIVE_URL"] = "file://" + dir + " s3://" + w.bucket + "/pgbackups"
	cmd, out := startBinary(t, env, "backup")
	var dumps []string
	for deadline := time.Now().Add(90 * time.Second); len(dumps) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // poll interval
		dumps = dumpsIn(t, dir)
	}
	if len(dumps) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the directory never received the dump:\n%s", out)
	}
	if !w.waitUploadUnderWay(30 * time.Second) {
		t.Error("the slow destination's upload was not under way")
	}
	stopped := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	elapsed := time.Since(stopped)
	t.Logf("output:\n%s", out)
	w.assertNoSecrets(out.String())
	if code := cmd.ProcessState.ExitCode(); code != ExitTerminated {
		t.Errorf("exit %d (%v), want %d", code, err, ExitTerminated)
	}
	if elapsed > 20*time.Second {
		t.Errorf("took %s to stop, want under 20 s", elapsed)
	}
	if !strings.Contains(out.String(), "backup run interrupted") {
		t.Error("the interruption was not reported")
	}
	// The committed dump has its manifest, which describes it.
	for _, key := range dumpsIn(t, dir) {
		dump, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		var m catalog.Manifest
		blob, err := os.ReadFile(filepath.Join(dir, catalog.ManifestKey(key)))
		if err != nil || json.Unmarshal(blob, &m) != nil {
			t.Fatalf("the dump %s has no manifest: %v", key, err)
		}
		sum := sha256.Sum256(dump)
		if m.Key != key || m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(dump)) {
			t.Errorf("the manifest says %s %s %d, the dump is %s %x %d", m.Key, m.SHA256, m.Bytes, key, sum, len(dump))
		}
	}
	if keys := w.keys(); len(keys) != 0 {
		t.Errorf("objects left at the slow destination: %v", keys)
	}
	if n := len(w.openUploads()); n != 0 {
		t.Errorf("%d incomplete multipart uploads left at the slow destination", n)
	}
}
