package cli

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A daily verify, status or drill never pings HEARTBEAT_URL, the backup's dead man's switch:
// each pings its own variable, or nothing; backup alone pings HEARTBEAT_URL. The monitor is a
// real HTTP server, seeing the requests as healthchecks.io would.
func TestEachCommandPingsItsOwnHeartbeat(t *testing.T) {
	w, denv := newDrillWorld(t, nil)
	with := func(env map[string]string, m *testenv.Receiver, vars ...string) map[string]string {
		out := map[string]string{}
		for k, v := range env {
			out[k] = v
		}
		for _, v := range vars {
			out[v] = m.URL + "/ping/" + strings.ToLower(strings.TrimSuffix(v, "_URL"))
		}
		return out
	}
	all := []string{"HEARTBEAT_URL", "VERIFY_HEARTBEAT_URL", "STATUS_HEARTBEAT_URL", "DRILL_HEARTBEAT_URL", "BUNDLE_HEARTBEAT_URL"}
	for _, tt := range []struct {
		command string
		env     map[string]string
		own     string // the path of the command's heartbeat
	}{
		{"verify", w.env("shop"), "/ping/verify_heartbeat"},
		{"status", w.env("shop"), "/ping/status_heartbeat"},
		{"drill", denv, "/ping/drill_heartbeat"},
		{"backup", w.env("shop"), "/ping/heartbeat"},
	} {
		t.Run(tt.command, func(t *testing.T) {
			m := testenv.NewReceiver(t)
			env := with(tt.env, m, all...)
			if code, _ := w.run(env, tt.command); code != ExitOK {
				t.Fatalf("%s: exit %d", tt.command, code)
			}
			if got, want := m.Seen(), "POST "+tt.own+"/start,POST "+tt.own; got != want {
				t.Errorf("%s with every heartbeat set: the monitor saw %q, want %q (its own alone)", tt.command, got, want)
			}
			if body := m.Bodies()[tt.own]; !strings.HasPrefix(body, "pgoffsite "+tt.command+" succeeded") {
				t.Errorf("%s: heartbeat summary %q, want it to name the command", tt.command, body)
			}
			if tt.command == "backup" {
				return
			}
			// With only the backup's switch set, the command pings nothing at all.
			m = testenv.NewReceiver(t)
			if code, _ := w.run(with(tt.env, m, "HEARTBEAT_URL"), tt.command); code != ExitOK {
				t.Fatalf("%s: exit %d", tt.command, code)
			}
			if got := m.Seen(); got != "" {
				t.Errorf("%s with only HEARTBEAT_URL set pinged %q: a daily %s would keep a stopped backup's switch green", tt.command, got, tt.command)
			}
		})
	}
}

// check warns when two commands share one heartbeat, naming the variables, and checks that
// every heartbeat's host answers.
func TestCheckWarnsOnSharedHeartbeat(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	m := testenv.NewReceiver(t)
	env := w.env("shop")
	env["HEARTBEAT_URL"] = m.URL + "/ping/one-check"
	env["VERIFY_HEARTBEAT_URL"] = m.URL + "/ping/one-check/"
	env["DRILL_HEARTBEAT_URL"] = m.URL + "/ping/drill-check"
	code, out := w.run(env, "check")
	if code != ExitOK {
		t.Fatalf("check: exit %d", code)
	}
	if !strings.Contains(out, "warn  HEARTBEAT_URL and VERIFY_HEARTBEAT_URL hold the same URL") || !strings.Contains(out, "HEARTBEAT_URL is the backup's alone") {
		t.Errorf("check does not warn about the shared heartbeat:\n%s", out)
	}
	if !strings.Contains(out, "ok    notification endpoints answer (HEARTBEAT_URL, VERIFY_HEARTBEAT_URL, DRILL_HEARTBEAT_URL") {
		t.Errorf("check does not name the heartbeats it reached:\n%s", out)
	}
	if got := m.Seen(); got != "" {
		t.Errorf("check pinged the monitor: %s", got)
	}

	env["VERIFY_HEARTBEAT_URL"] = m.URL + "/ping/verify-check"
	if code, out := w.run(env, "check"); code != ExitOK || strings.Contains(out, "same URL") {
		t.Errorf("check with a heartbeat per command: exit %d, or a warning about sharing:\n%s", code, out)
	}
}
