package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
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
	peak := func(targets []string) testenv.PeakMemory {
		env := w.env(strings.Join(targets, " "))
		env["BACKUP_MODE"] = "latest"
		env["ARCHIVE_URL"] = "s3://" + w.bucket + "/" + fmt.Sprintf("run%d", len(targets))
		cmd := binaryCommand(t, env, "backup")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		mem, err := testenv.RunMeasured(cmd)
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
		one.Anon/1024, n, all.Anon/1024, (all.Anon-one.Anon)/1024, one.Total/1024, all.Total/1024)
	// Buffers kept per target would add at least one 8 MiB range and one 8 MiB part for each of
	// the 29 more targets; what may grow is the heap's garbage between collections and the
	// per-target results, together less than one target's two buffers.
	if all.Anon-one.Anon > 16<<10 {
		t.Errorf("peak anonymous memory grew from %d MiB for one target to %d MiB for %d: want at most 16 MiB more", one.Anon/1024, all.Anon/1024, n)
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
	mem, err := testenv.RunMeasured(cmd)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	w.assertNoSecrets(out.String())
	if got := strings.Count(out.String(), "summary: archived"); got != len(targets) {
		t.Fatalf("%d targets archived of %d:\n%s", got, len(targets), out.String())
	}
	peak := mem.Anon * 1024
	t.Logf("peak anonymous memory with BACKUP_PARALLEL=3: %d MiB (limit %d MiB + 48 MiB); all resident, code included: %d MiB",
		peak>>20, limit>>20, mem.Total/1024)
	if peak > limit+48<<20 {
		t.Errorf("peak anonymous memory %d MiB is over ARCHIVE_MEMORY_LIMIT + 48 MiB = %d MiB", peak>>20, (limit+48<<20)>>20)
	}
}
