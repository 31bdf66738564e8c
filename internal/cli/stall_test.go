package cli

// Stalls at the job level, with the production settings: a peer that stops sending while the
// connection stays open must cost the run its stall limit (30 s without body bytes) and a
// warning, never the run itself. S3 stalls are tested in internal/s3store against MinIO through
// Toxiproxy with short limits: MinIO itself hangs up a silent connection after about 30 s, so
// the 60 s header limit cannot be reached through it.

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// runWithin runs `pgoffsite args...` like w.run with the environment setEnv set, but gives up
// after limit: a hang fails the test instead of holding it.
func (w *world) runWithin(limit time.Duration, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var stdout bytes.Buffer
	stderr := &testenv.Output{} // stall warnings are written from the watchdog's goroutine
	code := w.execute(ctx, args, &stdout, stderr)
	out := stdout.String() + stderr.String()
	w.t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, out)
	w.assertNoSecrets(out)
	if ctx.Err() != nil {
		w.t.Errorf("the run was still going after %s", limit)
	}
	return code, out
}

// setEnv sets exactly env for the next run.
func (w *world) setEnv(env map[string]string) {
	w.t.Helper()
	for _, k := range configVars {
		w.t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		w.t.Setenv(k, v)
	}
}

func hasAll(t *testing.T, out string, line string, want ...string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, line) {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return
		}
	}
	t.Errorf("no log line with %q and %q", line, want)
}

// The signed-URL server stops sending mid-range, connection open: the run resumes the range at
// its byte within a minute and archives the backup intact.
func TestStallDownloadMidBody(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon := w.bigDatabase("shop")
	num := w.captureDirect(addon, "shop")
	w.sim.Faults().StallStorage(1<<20, 1)
	defer w.sim.Faults().Reset()
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	w.setEnv(env)
	began := time.Now()
	code, out := w.runWithin(3*time.Minute, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if took := time.Since(began); took > 90*time.Second {
		t.Errorf("the run took %s: the stall cost more than its 30 s", took)
	}
	if got := w.objectUnder("pgbackups/", ".dump"); !bytes.Equal(got, w.simBackup("shop", num)) {
		t.Fatal("the archive differs from Heroku's backup")
	}
	hasAll(t, out, "network stall", "level=warn", "app=shop", "database=DATABASE", `request="download range `,
		"host=127.0.0.1:", `stalled="response body"`, "bytes=1048576")
}
