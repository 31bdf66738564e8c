package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of Debian's chromium (PGOFFSITE_CHROMIUM_BIN overrides it), for
// looking at an HTML report in a real browser. Missing, it fails the test in CI and skips it
// elsewhere.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGOFFSITE_CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "no chromium", "apt-get install -y chromium")
	return ""
}

// Artifacts is the directory a test keeps what people look at afterwards (screenshots):
// PGOFFSITE_ARTIFACTS when set (CI uploads it), else a temporary directory of the test.
func Artifacts(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PGOFFSITE_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("testenv: artifacts directory: %v", err)
		}
		return dir
	}
	return t.TempDir()
}
