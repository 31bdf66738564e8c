package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// HerokuCLIVersion is the release of the real Heroku CLI bin/test installs (bin/lib/setup.sh,
// ensure_heroku_cli).
const HerokuCLIVersion = "11.10.0"

// HerokuCLI returns the real Heroku CLI bin/test installs: $PGOFFSITE_HEROKU_CLI, else
// CacheDir()/heroku-cli/node_modules/.bin/heroku. Without it, or without node to run it, t is
// skipped (failed in CI).
func HerokuCLI(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("PGOFFSITE_HEROKU_CLI")
	if bin == "" {
		bin = filepath.Join(CacheDir(), "heroku-cli", "node_modules", ".bin", "heroku")
	}
	install := "npm install --prefix " + filepath.Join(CacheDir(), "heroku-cli") + " heroku@" + HerokuCLIVersion
	if _, err := os.Stat(bin); err != nil {
		missing(t, "Heroku CLI not found at "+bin+" ($PGOFFSITE_HEROKU_CLI)", install)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node not found on PATH: the Heroku CLI needs Node.js 20 or later", install+", with Node.js installed")
	}
	return bin
}
