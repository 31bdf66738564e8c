package heroku

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

// A session of the whole app's log, with the platform's lines, names each line's source and
// dyno, and replays what was written before it opened; every answer tells the account's rate
// limit left.
func TestAppLogSessionAndRateLimit(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	sim.AddApp("backups")
	sim.SetDynoCommand("greet", "/bin/sh")
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, ok := c.RateLimitRemaining(); ok {
		t.Error("a rate limit is known before any answer")
	}
	script := t.TempDir() + "/greet.sh"
	writeFile(t, script, "echo hello\n")
	d, err := c.RunDetached(ctx, "backups", RunOptions{Command: "greet " + script})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := c.RateLimitRemaining(); !ok || n <= 0 || n >= 4500 {
		t.Errorf("rate limit left %d, %v", n, ok)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) { // poll interval
		if ds := sim.Dynos(); len(ds) == 1 && ds[0].Ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dyno never ended")
		}
	}
	s, err := c.LogSession(ctx, "backups", LogOptions{Lines: 1500, Platform: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for len(got) < 5 {
		l, err := s.NextLine()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if l.Dyno != d.Name || l.At.IsZero() {
			t.Errorf("line %+v", l)
		}
		got = append(got, l.Source+": "+l.Text)
	}
	if all := strings.Join(got, "\n"); !strings.Contains(all, "app: hello") || !strings.Contains(all, "heroku: Process exited with status 0") {
		t.Errorf("lines:\n%s", all)
	}
}
