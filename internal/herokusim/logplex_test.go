package herokusim

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readSession opens a log session with body and returns its lines (data of each event) until
// the stream ends or wait passes.
func readSession(t *testing.T, platform string, body map[string]any, wait time.Duration) (lines []string, ended bool) {
	t.Helper()
	a := call(t, "POST", platform+"/apps/backups/log-sessions", token, body)
	if a.status != 201 {
		t.Fatalf("log session: %d %s", a.status, a.body)
	}
	c := &http.Client{Timeout: wait}
	resp, err := c.Get(a.obj(t)["logplex_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			lines = append(lines, data)
		}
	}
	return lines, sc.Err() == nil
}

// runDyno runs script in a one-off dyno of "backups" and waits for its end.
func runDyno(t *testing.T, s *Sim, platform, script string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	d := call(t, "POST", platform+"/apps/backups/dynos", token, map[string]any{"command": "sh " + f, "attach": false}).obj(t)
	name := d["name"].(string)
	for deadline := time.Now().Add(20 * time.Second); ; {
		for _, r := range s.Dynos() {
			if r.Name == name && r.Ended {
				return name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dyno %s never ended", name)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// A log session replays the last `lines` of the whole app's log (100 unless told, at most
// 1,500), and filters by dyno only then: a quiet dyno's line is out of a session's reach once a
// busy one wrote enough after it. A tail stream ends after SetLogStreamLife.
func TestLogSessionsAreLogplexs(t *testing.T) {
	s := New(Options{Token: token})
	platform, _ := Serve(t, s)
	s.AddApp("backups")
	s.SetDynoCommand("sh", "/bin/sh")
	quiet := runDyno(t, s, platform, "echo the result\n")
	busy := runDyno(t, s, platform, "i=0; while [ $i -lt 150 ]; do echo busy $i; i=$((i+1)); done\n")

	got, _ := readSession(t, platform, map[string]any{"dyno": quiet, "source": "app"}, 2*time.Second)
	if len(got) != 0 {
		t.Errorf("the default replay (100 of the app's lines) reached the quiet dyno's line: %q", got)
	}
	got, _ = readSession(t, platform, map[string]any{"dyno": quiet, "source": "app", "lines": 1500}, 2*time.Second)
	if len(got) != 1 || !strings.HasSuffix(got[0], " app["+quiet+"]: the result") {
		t.Errorf("replay of 1,500 lines: %q", got)
	}
	got, _ = readSession(t, platform, map[string]any{"dyno": busy, "source": "app", "lines": 10}, 2*time.Second)
	if len(got) != 8 || !strings.HasSuffix(got[7], "busy 149") {
		t.Errorf("replay of the app's last 10 lines (Heroku's exit lines are two of them): %q", got)
	}
	got, _ = readSession(t, platform, map[string]any{"lines": 5000}, 2*time.Second)
	if len(got) != 5+154 { // each dyno: starting, up, its lines, exited, complete
		t.Errorf("the whole app's log: %d lines, want 159", len(got))
	}
	if !strings.Contains(strings.Join(got, "\n"), "heroku["+busy+"]: Process exited with status 0") {
		t.Errorf("the platform's lines are not in the app's log: %q", got[len(got)-3:])
	}

	s.SetLogStreamLife(300 * time.Millisecond)
	s.SetLogReplayLimit(3)
	start := time.Now()
	got, ended := readSession(t, platform, map[string]any{"tail": true, "lines": 1500}, 10*time.Second)
	if !ended || time.Since(start) > 5*time.Second || len(got) != 3 {
		t.Errorf("tail stream: ended %v after %s with %d lines, want an end after 300 ms and 3 lines", ended, time.Since(start), len(got))
	}
}

// PlatformCallPeak counts the most Platform API calls in any window.
func TestPlatformCallPeak(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Options{Token: token, Now: func() time.Time { return at }})
	platform, _ := Serve(t, s)
	for i := range 10 {
		at = time.Date(2026, 12, 1, 12, 0, i*10, 0, time.UTC) // one call every 10 s
		call(t, "GET", platform+"/account", token, nil)
	}
	if got := s.PlatformCallPeak(time.Minute); got != 6 {
		t.Errorf("peak %d calls a minute, want 6", got)
	}
	if got := s.PlatformCallPeak(5 * time.Second); got != 1 {
		t.Errorf("peak %d calls in 5 s, want 1", got)
	}
}
