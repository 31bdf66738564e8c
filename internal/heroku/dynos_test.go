package heroku

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// The one-off dyno limit is the app's: a second app starts its dyno while the first is at its
// limit, and the refusal is ErrDynoLimit (and ErrDynoRefused: it lifts as dynos end), naming
// the app and BACKUP_FANOUT. A Fir app is refused as the fan-out host.
func TestDynoLimitIsPerApp(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	sim.SetStopGrace(100 * time.Millisecond)
	sim.AddApp("backups")
	sim.AddApp("other")
	sim.AddApp("fir-app")
	sim.SetGeneration("fir-app", GenerationFir)
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var started []Dyno
	t.Cleanup(func() {
		for _, d := range started {
			c.StopDyno(context.Background(), "backups", d.ID)
		}
	})
	// Eco: one one-off dyno per app, which the coordinator's own dyno would already take.
	d, err := c.RunDetached(ctx, "backups", RunOptions{Command: "sleep 30", Size: "eco"})
	if err != nil {
		t.Fatal(err)
	}
	started = append(started, d)
	_, err = c.RunDetached(ctx, "backups", RunOptions{Command: "sleep 30", Size: "eco"})
	if !errors.Is(err, ErrDynoLimit) || !errors.Is(err, ErrDynoRefused) || !strings.Contains(err.Error(), "cannot_run_above_limit") ||
		!strings.Contains(err.Error(), "Cannot run more than 1 eco size dynos") ||
		!strings.Contains(err.Error(), "the app backups runs as many one-off dynos as Heroku allows") || !strings.Contains(err.Error(), "BACKUP_FANOUT") {
		t.Errorf("past the Eco limit: %v", err)
	}
	od, err := c.RunDetached(ctx, "other", RunOptions{Command: "sleep 30", Size: "eco"})
	if err != nil {
		t.Errorf("another app's dyno: %v", err)
	} else {
		defer c.StopDyno(context.Background(), "other", od.ID)
	}
	if g, err := c.AppGeneration(ctx, "fir-app"); err != nil || g != GenerationFir {
		t.Errorf("fir-app's generation: %q, %v", g, err)
	}
	info, err := c.AppInfo(ctx, "fir-app")
	if err = FanoutHost(info); !errors.Is(err, ErrFir) || !strings.Contains(err.Error(), `app fir-app is of Heroku's Fir generation (generation "fir")`) ||
		!strings.Contains(err.Error(), "BACKUP_FANOUT=0") {
		t.Errorf("fan-out on a Fir app: %v", err)
	}
	if info, err := c.AppInfo(ctx, "other"); err != nil || info.Generation != GenerationCedar || FanoutHost(info) != nil || NeedsSlugs(info) != nil {
		t.Errorf("a Cedar app: %+v, %v", info, err)
	}
}

// How dyno starts are refused: the limit however Heroku words it, "not now" answers, and any
// other 422 quoted as one pgoffsite does not know; none of them is retried by the client.
func TestDynoStartRefusals(t *testing.T) {
	for _, tc := range []struct {
		status       int
		id, message  string
		limit, later bool
	}{
		{422, "cannot_run_above_limit", "Cannot run more than 50 Standard-1X size dynos.", true, true},
		{422, "invalid_params", "Cannot run more than 1 Free size dynos.", true, true},
		{422, "dyno_limit_reached", "Too many dynos.", true, true},
		{422, "invalid_params", "Cannot run one-off process at this time. Please try again later.", false, true},
		{409, "conflict", "release not ready", false, true},
		{422, "invalid_params", "Size is not a valid dyno size.", false, false},
	} {
		f, c := newFake(t)
		f.json("POST /apps/backups/dynos", tc.status, map[string]string{"id": tc.id, "message": tc.message})
		_, err := c.RunDetached(context.Background(), "backups", RunOptions{Command: "pgoffsite backup"})
		if errors.Is(err, ErrDynoLimit) != tc.limit || errors.Is(err, ErrDynoRefused) != tc.later || f.count("POST /apps/backups/dynos") != 1 {
			t.Errorf("%d %s %q: %v (limit %v, refused %v, %d requests)", tc.status, tc.id, tc.message, err,
				errors.Is(err, ErrDynoLimit), errors.Is(err, ErrDynoRefused), f.count("POST /apps/backups/dynos"))
		}
		if !tc.limit && !tc.later && (!errors.Is(err, ErrDynoUnknown) || !strings.Contains(err.Error(), fmt.Sprintf("id %q, message %q", tc.id, tc.message))) {
			t.Errorf("an unknown 422: %v, want it quoted", err)
		}
	}
}

// A stop answered 202 with no body is done: one request, no error; so is the schema's {}.
func TestStopDynoEmptyAnswer(t *testing.T) {
	f, c := newFake(t)
	f.on("POST /apps/backups/dynos/d1/actions/stop", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	f.json("POST /apps/backups/dynos/d2/actions/stop", http.StatusAccepted, map[string]any{})
	for _, id := range []string{"d1", "d2"} {
		if err := c.StopDyno(context.Background(), "backups", id); err != nil || f.count("POST /apps/backups/dynos/"+id+"/actions/stop") != 1 {
			t.Errorf("stop %s: %v after %d requests", id, err, f.count("POST /apps/backups/dynos/"+id+"/actions/stop"))
		}
	}
}

// The generation comes as a name or as {id, name}; an app without one is Cedar.
func TestAppGenerationForms(t *testing.T) {
	f, c := newFake(t)
	f.json("GET /apps/a", 200, map[string]any{"name": "a", "generation": "fir"})
	f.json("GET /apps/b", 200, map[string]any{"name": "b", "generation": map[string]string{"id": "x", "name": "fir"}})
	f.json("GET /apps/c", 200, map[string]any{"name": "c"})
	for app, want := range map[string]string{"a": GenerationFir, "b": GenerationFir, "c": GenerationCedar} {
		if g, err := c.AppGeneration(context.Background(), app); err != nil || g != want {
			t.Errorf("%s: %q, %v; want %q", app, g, err, want)
		}
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
