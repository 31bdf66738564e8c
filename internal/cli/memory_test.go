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
// buffers) and compares peak RSS: on a 512 MB dyno, memory must not grow with the number of
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
	peak := func(targets []string) int64 {
		env := w.env(strings.Join(targets, " "))
		env["BACKUP_MODE"] = "latest"
		env["ARCHIVE_URL"] = "s3://" + w.bucket + "/" + fmt.Sprintf("run%d", len(targets))
		cmd := binaryCommand(t, env, "backup")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		kib, err := runMeasured(cmd)
		if err != nil {
			t.Fatalf("%d targets: %v\n%s", len(targets), err, out.String())
		}
		w.assertNoSecrets(out.String())
		if got := strings.Count(out.String(), "summary: archived"); got != len(targets) {
			t.Fatalf("%d targets archived of %d:\n%s", got, len(targets), out.String())
		}
		return kib
	}
	one := peak(targets[:1])
	all := peak(targets)
	t.Logf("peak RSS: one target %d MiB, %d targets %d MiB (%.2f×)", one/1024, n, all/1024, float64(all)/float64(one))
	if float64(all) > 1.2*float64(one) {
		t.Errorf("peak RSS grew from %d MiB for one target to %d MiB for %d: want at most 1.2×", one/1024, all/1024, n)
	}
}

// TestMemoryParallelShared runs the real binary with BACKUP_PARALLEL=3 over six targets of about
// 24 MB each: the targets share ARCHIVE_MEMORY_LIMIT, so peak RSS stays within it plus the
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
	kib, err := runMeasured(cmd)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	w.assertNoSecrets(out.String())
	if got := strings.Count(out.String(), "summary: archived"); got != len(targets) {
		t.Fatalf("%d targets archived of %d:\n%s", got, len(targets), out.String())
	}
	peak := kib * 1024
	t.Logf("peak RSS with BACKUP_PARALLEL=3: %d MiB (limit %d MiB + 48 MiB)", peak>>20, limit>>20)
	if peak > limit+48<<20 {
		t.Errorf("peak RSS %d MiB is over ARCHIVE_MEMORY_LIMIT + 48 MiB = %d MiB", peak>>20, (limit+48<<20)>>20)
	}
}

// runMeasured runs cmd and returns its own peak resident memory (VmHWM, KiB), read from /proc
// while it runs. The rusage wait returns is no measure of a child of the test: the child starts
// sharing the test process's memory until it execs, and Linux keeps that memory's high-water
// mark in the child's maximum RSS, so under the race detector it reports the test's own peak.
func runMeasured(cmd *exec.Cmd) (int64, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(10 * time.Millisecond) // VmHWM only grows: the last read before exit is the peak, to within 10 ms
	defer tick.Stop()
	var peak int64
	for {
		if kib := vmHWM(status); kib > peak {
			peak = kib
		}
		select {
		case err := <-done:
			if peak == 0 {
				return 0, fmt.Errorf("no memory figure was read from %s: %v", status, err)
			}
			return peak, err
		case <-tick.C:
		}
	}
}

// vmHWM reads the "VmHWM:   123456 kB" line of a /proc/PID/status; 0 when there is none.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kib)
			return kib
		}
	}
	return 0
}
