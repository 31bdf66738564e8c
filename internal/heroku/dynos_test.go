package heroku

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

// A detached one-off dyno on the simulator: it runs the command with the app's config vars and
// the given env, its output arrives through a tailing log session, and it is gone once it ended.
// A second start beyond the dyno limit is refused as Heroku does (ErrDynoRefused), a stop ends
// a running dyno, and a log line's Heroku prefix is stripped.
func TestDynosOnSim(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	sim.SetConfigVars("backups", map[string]string{"GREETING": "hello"})
	sim.SetDynoCommand("greet", "/bin/sh")
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// sh reads the script from the file named by its argument: the command line has no quoting.
	script := t.TempDir() + "/greet.sh"
	writeFile(t, script, "echo \"$GREETING $WHO\"\necho second line\n")
	d, err := c.RunDetached(ctx, "backups", RunOptions{Command: "greet " + script, Size: "standard-1X", TimeToLive: time.Hour, Env: map[string]string{"WHO": "world"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Name, "run.") || d.ID == "" {
		t.Fatalf("dyno %+v", d)
	}
	logs, err := c.Logs(ctx, "backups", d.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var got []string
	for len(got) < 2 {
		line, err := logs.Next()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, line)
	}
	if got[0] != "hello world" || got[1] != "second line" {
		t.Errorf("log lines %q", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := c.DynoInfo(ctx, "backups", d.ID)
		if IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dyno is still there: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	if recs := sim.Dynos(); len(recs) != 1 || recs[0].ExitCode != 0 || recs[0].TTL != 3600 || recs[0].Size != "standard-1X" {
		t.Errorf("records %+v", recs)
	}

	sim.SetDynoLimit(1)
	sim.SetStopGrace(time.Second)
	sleeper := t.TempDir() + "/sleep.sh"
	writeFile(t, sleeper, "trap 'echo got TERM; exit 143' TERM\necho ready\nwhile :; do sleep 0.1; done\n")
	long, err := c.RunDetached(ctx, "backups", RunOptions{Command: "greet " + sleeper})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RunDetached(ctx, "backups", RunOptions{Command: "greet " + sleeper})
	if !errors.Is(err, ErrDynoRefused) || !strings.Contains(err.Error(), "cannot_run_above_limit") {
		t.Fatalf("second dyno past the limit: %v", err)
	}
	logs2, err := c.Logs(ctx, "backups", long.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer logs2.Close()
	// Stopped once its trap is set: a SIGTERM before would end sh silently.
	if line, err := logs2.Next(); err != nil || line != "ready" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := c.StopDyno(ctx, "backups", long.ID); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := logs2.Next()
		if err == io.EOF || err != nil {
			t.Fatalf("no TERM seen: %v", err)
		}
		if line == "got TERM" {
			break
		}
	}
	if sim.MaxConcurrentDynos() != 1 {
		t.Errorf("peak %d dynos", sim.MaxConcurrentDynos())
	}
}

func TestLogMessage(t *testing.T) {
	for in, want := range map[string]string{
		"2026-12-01T12:00:00.000000+00:00 app[run.1234]: level=info msg=hi": "level=info msg=hi",
		"2026-12-01T12:00:00.123456+00:00 heroku[run.1234]: State changed":  "State changed",
		"plain line": "plain line",
	} {
		if got := LogMessage(in); got != want {
			t.Errorf("LogMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
