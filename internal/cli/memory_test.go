package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMemoryFlatInTargets runs the real binary over one target and then over thirty (each dump
// about 24 MB, several 8 MiB download ranges and upload parts, so every target allocates its own
// buffers) and compares peak anonymous memory: on a 512 MB dyno, memory must not grow with the number of
// databases.
func TestMemoryFlatInTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1.5 GB")
	}
	w := newWorld(t)
	name, dsn := w.pg.CreateDB(t, "big")
	w.pg.Exec(t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 24000) g;`)
	const n = 30
	var targets []string
	for i := range n {
		app := fmt.Sprintf("shop-%02d", i)
		w.sim.AddApp(app)
		addon := w.sim.AddDatabase(app, "DATABASE", "heroku-postgresql:standard-0", dsn)
		w.captureDirect(addon, app)
		targets = append(targets, app)
	}
	peak := func(targets []string) peakMemory {
		env := w.env(strings.Join(targets, " "))
		env["BACKUP_MODE"] = "latest"
		env["ARCHIVE_URL"] = "s3://" + w.bucket + "/" + fmt.Sprintf("run%d", len(targets))
		cmd := binaryCommand(t, env, "backup")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		mem, err := runMeasured(cmd)
		if err != nil {
			t.Fatalf("%d targets: %v\n%s", len(targets), err, out.String())
		}
		w.assertNoSecrets(out.String())
		if got := strings.Count(out.String(), "summary: archived"); got != len(targets) {
			t.Fatalf("%d targets archived of %d:\n%s", got, len(targets), out.String())
		}
		return mem
	}
	one := peak(targets[:1])
	all := peak(targets)
	t.Logf("peak anonymous memory: one target %d MiB, %d targets %d MiB (+%d MiB); all resident, code included: %d and %d MiB",
		one.anon/1024, n, all.anon/1024, (all.anon-one.anon)/1024, one.total/1024, all.total/1024)
	// Buffers kept per target would add at least one 8 MiB range and one 8 MiB part for each of
	// the 29 more targets; what may grow is the heap's garbage between collections and the
	// per-target results, together less than one target's two buffers.
	if all.anon-one.anon > 16<<10 {
		t.Errorf("peak anonymous memory grew from %d MiB for one target to %d MiB for %d: want at most 16 MiB more", one.anon/1024, all.anon/1024, n)
	}
}

// TestMemoryParallelShared runs the real binary with BACKUP_PARALLEL=3 over six targets of about
// 24 MB each: the targets share ARCHIVE_MEMORY_LIMIT, so peak anonymous memory stays within it plus the
// runtime's own 48 MiB, instead of three targets' buffers each the size of the whole budget.
func TestMemoryParallelShared(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 150 MB")
	}
	w := newWorld(t)
	name, dsn := w.pg.CreateDB(t, "big")
	w.pg.Exec(t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 24000) g;`)
	var targets []string
	for i := range 6 {
		app := fmt.Sprintf("shop-%02d", i)
		w.sim.AddApp(app)
		addon := w.sim.AddDatabase(app, "DATABASE", "heroku-postgresql:standard-0", dsn)
		w.captureDirect(addon, app)
		targets = append(targets, app)
	}
	const limit = 96 << 20
	env := w.env(strings.Join(targets, " "))
	env["BACKUP_MODE"] = "latest"
	env["BACKUP_PARALLEL"] = "3"
	env["ARCHIVE_MEMORY_LIMIT"] = "96MiB"
	cmd := binaryCommand(t, env, "backup")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	mem, err := runMeasured(cmd)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	w.assertNoSecrets(out.String())
	if got := strings.Count(out.String(), "summary: archived"); got != len(targets) {
		t.Fatalf("%d targets archived of %d:\n%s", got, len(targets), out.String())
	}
	peak := mem.anon * 1024
	t.Logf("peak anonymous memory with BACKUP_PARALLEL=3: %d MiB (limit %d MiB + 48 MiB); all resident, code included: %d MiB",
		peak>>20, limit>>20, mem.total/1024)
	if peak > limit+48<<20 {
		t.Errorf("peak anonymous memory %d MiB is over ARCHIVE_MEMORY_LIMIT + 48 MiB = %d MiB", peak>>20, (limit+48<<20)>>20)
	}
}

// peakMemory is a child's peak resident memory in KiB: all of it (VmHWM, which counts the pages
// of the binary's code it touched) and its anonymous part (heap, stacks, buffers). The second is
// what a dyno is charged for: Heroku's memory_rss and R14 come from the cgroup's "rss", which is
// anonymous memory, not the executable's file-backed pages, so the budget tests bound that and
// show the other.
type peakMemory struct{ total, anon int64 }

// runMeasured runs cmd and returns its own peak memory, read from /proc every 10 ms while it
// runs (VmHWM is kernel-kept; the anonymous peak is sampled, and buffers live far longer than
// 10 ms). The rusage wait returns is no measure of a child of the test: the child starts sharing
// the test process's memory until it execs, and Linux keeps that memory's high-water mark in the
// child's maximum RSS, so under the race detector it reports the test's own peak.
func runMeasured(cmd *exec.Cmd) (peakMemory, error) {
	var peak peakMemory
	if err := cmd.Start(); err != nil {
		return peak, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		now := readStatus(status)
		peak.total = max(peak.total, now["VmHWM"])
		peak.anon = max(peak.anon, now["RssAnon"])
		select {
		case err := <-done:
			if peak.total == 0 || peak.anon == 0 {
				return peak, fmt.Errorf("no memory figure was read from %s: %v", status, err)
			}
			return peak, err
		case <-tick.C:
		}
	}
}

// readStatus reads the "Name:   123456 kB" lines of a /proc/PID/status; empty when it is gone.
func readStatus(path string) map[string]int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	kib := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(rest, " kB") {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &n); err == nil {
			kib[name] = n
		}
	}
	return kib
}
