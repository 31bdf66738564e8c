package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// HerokuCLIEnv is the whole environment to run the Heroku CLI in against a local simulator at
// origin (https://127.0.0.1:PORT, its certificate signed by the CA in caFile) with apiKey: a home
// of its own (removed when t ends), no analytics, no update checks, and nothing of the machine's
// proxy or certificate settings.
func HerokuCLIEnv(t testing.TB, origin, caFile, apiKey string) []string {
	t.Helper()
	dirs := []string{"/usr/local/bin", "/usr/bin", "/bin"}
	if node, err := exec.LookPath("node"); err == nil {
		dirs = append([]string{filepath.Dir(node)}, dirs...)
	}
	home := t.TempDir()
	return []string{
		"PATH=" + strings.Join(dirs, string(os.PathListSeparator)), "HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"HEROKU_API_KEY=" + apiKey, "HEROKU_HOST=" + origin, "HEROKU_DATA_HOST=127.0.0.1",
		"HEROKU_SKIP_ANALYTICS=1", "HEROKU_SKIP_NEW_VERSION_CHECK=true", "HEROKU_DISABLE_AUTOUPDATE=1",
		"NODE_EXTRA_CA_CERTS=" + caFile, "NO_COLOR=1", "TERM=dumb", "CI=true",
	}
}
