package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// withMonitor points the heartbeat and the webhook at a Receiver standing in for both.
func (w *world) withMonitor(env map[string]string, on string) (*testenv.Receiver, map[string]string) {
	m := testenv.NewReceiver(w.t)
	env["HEARTBEAT_URL"] = m.URL + "/ping/9f1c-check-key"
	env["NOTIFY_WEBHOOK_URL"] = m.URL + "/hook"
	env["NOTIFY_ON"] = on
	return m, env
}

func TestNotifySuccess(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	m, env := w.withMonitor(w.env("shop"), "failure")
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if got := m.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key" {
		t.Errorf("monitor saw %s", got)
	}
	m, env = w.withMonitor(w.env("shop"), "always")
	env["ARCHIVE_URL"] += "/again"
	w.run(env, "backup")
	if got := m.Seen(); !strings.HasSuffix(got, "POST /hook") {
		t.Errorf("NOTIFY_ON=always: monitor saw %s", got)
	}
}

func TestNotifyFailures(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	tests := []struct {
		name  string
		env   func(map[string]string)
		setup func()
		cause string
	}{
		{"capture failure", nil, func() { w.sim.Faults().FailCaptures(1, "pg_dump: error: out of shared memory") }, "out of shared memory"},
		{"heroku 401", func(e map[string]string) { e["HEROKU_API_KEY"] = "hrku-expired-00000000" }, nil, "401"},
		{"s3 access denied", func(e map[string]string) { e["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-key-123456" }, nil, "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, env := w.withMonitor(w.env("shop"), "failure")
			if tt.env != nil {
				tt.env(env)
			}
			if tt.setup != nil {
				tt.setup()
			}
			code, _ := w.run(env, "backup")
			if code != ExitFailed {
				t.Errorf("exit %d, want %d", code, ExitFailed)
			}
			if got := m.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key/fail,POST /hook" {
				t.Errorf("monitor saw %s", got)
			}
			bodies := m.Bodies()
			if !strings.Contains(bodies["/ping/9f1c-check-key/fail"], tt.cause) {
				t.Errorf("the fail ping lacks the cause %q: %s", tt.cause, bodies["/ping/9f1c-check-key/fail"])
			}
			var p struct {
				Status  string
				Targets []struct{ Error string }
			}
			if err := json.Unmarshal([]byte(bodies["/hook"]), &p); err != nil || p.Status != "failed" || !strings.Contains(p.Targets[0].Error, tt.cause) {
				t.Errorf("webhook %s (%v)", bodies["/hook"], err)
			}
			for _, body := range bodies {
				w.assertNoSecrets(body)
			}
		})
	}
}

// A monitor that is down or hangs does not change the backup's result, and does not hold it up
// for long.
func TestNotifyEndpointDownOrSlow(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	for _, mode := range []string{"down", "slow"} {
		m, env := w.withMonitor(w.env("shop"), "always")
		env["ARCHIVE_URL"] += "/" + mode
		if mode == "down" {
			m.Answer(0, http.StatusBadGateway)
		} else {
			m.Answer(12*time.Second, 0) // beyond the 10 s bound
		}
		start := time.Now()
		code, out := w.run(env, "backup")
		if code != ExitOK {
			t.Errorf("%s: exit %d, want 0", mode, code)
		}
		if !strings.Contains(out, "notification failed (the run's result is unchanged)") {
			t.Errorf("%s: the notification failure was not logged", mode)
		}
		if time.Since(start) > 90*time.Second {
			t.Errorf("%s: the run took %s", mode, time.Since(start))
		}
	}
}

func TestCheck(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon, _ := w.database("shop", "DATABASE", 100)
	w.captureDirect(addon, "shop")
	_, good := w.withMonitor(w.env("shop"), "failure")
	code, out := w.run(good, "check")
	if code != ExitOK || !strings.Contains(out, "all checks passed") || !strings.Contains(out, "ops@example.com") ||
		!strings.Contains(out, "newest Heroku backup b001") || !strings.Contains(out, "archive is writable") {
		t.Fatalf("a correct setup: exit %d", code)
	}
	tests := []struct {
		name string
		env  func(map[string]string)
		want string
	}{
		{"wrong key", func(e map[string]string) { e["HEROKU_API_KEY"] = "hrku-wrong-0000000000" }, "FAIL  HEROKU_API_KEY is not accepted by Heroku"},
		{"wrong key's fix", func(e map[string]string) { e["HEROKU_API_KEY"] = "hrku-wrong-0000000000" }, "heroku config:set HEROKU_API_KEY="},
		{"unknown app", func(e map[string]string) { e["BACKUP_TARGETS"] = "shop no-such-app" }, "no-such-app:DATABASE_URL: heroku: resolve"},
		{"unreachable bucket", func(e map[string]string) { e["ARCHIVE_URL"] = "s3://no-such-bucket-here/x" }, "is not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := w.env("shop")
			tt.env(env)
			code, out := w.run(env, "check")
			if code != ExitFailed || !strings.Contains(out, "FAIL") || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d; output lacks %q", code, tt.want)
			}
		})
	}
}
