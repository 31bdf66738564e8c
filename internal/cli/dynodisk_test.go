package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// TestFileRefusedInADyno: `pgoffsite check` in a one-off dyno of the simulator (DYNO set, as
// Heroku sets it) refuses a file:// destination before anything runs, saying that the dyno's
// disk is wiped and what to use, with the usage status; nothing is written there.
func TestFileRefusedInADyno(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	dir := t.TempDir()
	env := w.env("shop")
	env["ARCHIVE_URL"] = "file://" + dir
	w.fanoutApp(env)
	// Outside a dyno the same configuration passes.
	if code, _ := w.run(env, "check"); code != ExitOK {
		t.Fatalf("check outside a dyno: exit %d", code)
	}
	os.RemoveAll(filepath.Join(dir, "_pgoffsite-check"))

	hk := heroku.New(heroku.Options{APIKey: apiKey, PlatformURL: w.platform, DataURL: w.data})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := hk.RunDetached(ctx, "backups", heroku.RunOptions{Command: "pgoffsite check"})
	if err != nil {
		t.Fatal(err)
	}
	var ended bool
	for !ended && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		for _, r := range w.sim.Dynos() {
			if r.Name == d.Name && r.Ended {
				ended = true
				if r.ExitCode != ExitUsage {
					t.Errorf("check in a dyno: exit %d, want %d", r.ExitCode, ExitUsage)
				}
			}
		}
	}
	if !ended {
		t.Fatal("the dyno did not end")
	}
	log := w.sim.DynoLog(d.Name)
	t.Logf("dyno log:\n%s", log)
	for _, want := range []string{"ARCHIVE_URL: \"file://" + dir + "\" is on the disk of this dyno (DYNO=" + d.Name + "), which Heroku wipes when the dyno exits",
		"s3://bucket/prefix"} {
		if !strings.Contains(log, want) {
			t.Errorf("the dyno's output lacks %q", want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the dyno wrote into the directory: %v", entries)
	}
}
