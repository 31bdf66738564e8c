package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bin/demo tells the story end to end, a headline per step in order, against the simulator, a
// real PostgreSQL and a local directory it creates: check passes, the backup is listed, status
// is OK, verify finds it sound, and the scratch database restored from it holds the rows of the
// original. It installs only what it uses.
func TestDemoTellsTheStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	archive := filepath.Join(t.TempDir(), "archive") // missing: the demo must create it
	cmd := exec.CommandContext(ctx, "../../bin/demo")
	cmd.Env = append(os.Environ(), "PGOFFSITE_DEMO_ARCHIVE="+archive)
	cmd.WaitDelay = 10 * time.Second
	raw, err := cmd.CombinedOutput()
	out := string(raw)
	if err != nil {
		t.Fatalf("bin/demo: %v\n%s", err, out)
	}
	at := 0
	for i, step := range []string{"Check the setup", "Back up", "List what the archive holds", "Status", "Verify the newest archive", "Restore it into an empty scratch database"} {
		head := "== " + string(rune('1'+i)) + ". " + step
		n := strings.Index(out[at:], head)
		if n < 0 {
			t.Fatalf("no headline %q after the previous one:\n%s", head, out)
		}
		at += n
	}
	for _, s := range []string{"all checks passed", "1 archives at file://" + archive, ": OK", `msg="verify finished" archives=1 failed=0`} {
		if !strings.Contains(out, s) {
			t.Errorf("the demo does not say %q", s)
		}
	}
	rows := regexp.MustCompile(`the (shop|scratch) database: +(\d+ customers, \d+ orders)`).FindAllStringSubmatch(out, -1)
	if len(rows) != 2 || rows[0][2] != rows[1][2] || rows[0][2] != "1000 customers, 50000 orders" {
		t.Errorf("row counts %q, want the scratch database's equal to the shop's", rows)
	}
	if dumps, _ := filepath.Glob(filepath.Join(archive, "demo-shop", "DATABASE", "*", "*", "*", "*.dump")); len(dumps) != 1 {
		t.Errorf("%d dumps in %s, want 1", len(dumps), archive)
	}

	// What it installs: the demo's own list, which names no browser and no SSH server.
	demo, _ := os.ReadFile("../../bin/demo")
	setup, _ := os.ReadFile("../../bin/lib/setup.sh")
	if !strings.Contains(string(demo), "\nensure_demo_packages\n") || strings.Contains(string(demo), "ensure_packages") {
		t.Error("bin/demo installs more than ensure_demo_packages")
	}
	body := regexp.MustCompile(`(?s)\nensure_demo_packages\(\) \{\n(.*?)\n\}\n`).FindSubmatch(setup)
	if body == nil || strings.Contains(string(body[1]), "chromium") || strings.Contains(string(body[1]), "openssh") {
		t.Errorf("ensure_demo_packages installs a browser or an SSH server: %s", body)
	}
}
