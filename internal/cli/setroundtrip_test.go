package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/listing"
	"github.com/pgoffsite/pgoffsite/internal/verify/settest"
)

// A parallel backup the way back, with the real binary and nothing made by hand: PG_DUMP_JOBS=3
// stores a set in MinIO; verify proves every stream; list shows one archive of three streams;
// restore --jobs 2 --from latest brings back a database whose schema, rows, sequences and large
// objects equal the source's.
func TestParallelBackupRestoresIdentically(t *testing.T) {
	w := newWorld(t)
	name, url := w.pg.CreateDB(t, "set_roundtrip")
	w.pg.Exec(t, name, settest.Schema)
	w.pg.Exec(t, name, `INSERT INTO orders (customer_id, note) SELECT 1 + g % 200, md5(g::text) FROM generate_series(1, 40000) g`)
	want := settest.Fingerprint(t, w.pg, name)

	env := w.dumpSetEnv(url)
	code, backupOut := w.run(env, "backup")
	if code != ExitOK || !strings.Contains(backupOut, "set stored") {
		t.Fatalf("backup: exit %d", code)
	}
	var m catalog.Manifest
	for _, k := range w.keys() {
		if strings.HasSuffix(k, ".json") {
			if err := json.Unmarshal(w.object(k), &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m.Set == nil || len(m.Set.Parts) != 2 {
		t.Fatalf("the manifest is not a set of three streams: %+v", m.Set)
	}
	// The summary speaks of the whole set, not of its first stream.
	if total := fmt.Sprintf("bytes=%d", m.StoredBytes()); !strings.Contains(backupOut, `msg="summary: archived"`) || !strings.Contains(backupOut[strings.Index(backupOut, "summary: archived"):], total) {
		t.Errorf("the summary does not give the set's %s", total)
	}

	read := w.restoreEnv()
	read["SHOP_DATABASE_URL"] = url
	read["BACKUP_TARGETS"] = "env:SHOP_DATABASE_URL"
	if code, out := w.run(read, "verify"); code != ExitOK || !strings.Contains(out, "streams=3") || !strings.Contains(out, fmt.Sprintf("bytes=%d", m.StoredBytes())) {
		t.Fatalf("verify of the set: exit %d", code)
	}
	code, out := w.runStdout(read, "list", "env:SHOP_DATABASE_URL", "--json")
	var list struct{ Archives []listing.Archive }
	if err := json.Unmarshal([]byte(out), &list); code != ExitOK || err != nil {
		t.Fatalf("list --json: exit %d: %v\n%s", code, err, out)
	}
	if listed := list.Archives; len(listed) != 1 || listed[0].Parts != 3 || !listed[0].OK() {
		t.Errorf("list shows %+v, want one archive of 3 streams without problems", list.Archives)
	}

	restored, dsn := w.pg.CreateDB(t, "set_roundtrip_restored")
	if code, _ := w.run(read, "restore", "--from", "env:SHOP_DATABASE_URL@latest", "--to", dsn, "--jobs", "2"); code != ExitOK {
		t.Fatalf("restore --jobs 2: exit %d", code)
	}
	if got := settest.Fingerprint(t, w.pg, restored); got != want {
		t.Errorf("the restored database differs from the source:\n--- source\n%s\n--- restored\n%s", want, got)
	}
}

// Fork capture and parallel dumps together: the fork is dumped as a set by PG_DUMP_JOBS=2, is
// deleted only after every stream has ended, and the set restores in two sessions to the
// source's rows.
func TestForkDumpedInParallel(t *testing.T) {
	w, name, env := newForkWorld(t, 20000)
	env["PG_DUMP_JOBS"] = "2"
	code, out := w.run(env, "backup")
	if code != ExitOK || !strings.Contains(out, "set stored") || !strings.Contains(out, "fork deleted") {
		t.Fatalf("exit %d", code)
	}
	if strings.Index(out, "fork deleted") < strings.Index(out, "set stored") {
		t.Error("the fork was deleted before the set was stored")
	}
	m, _ := w.manifest("shop", "DATABASE")
	if m.Set == nil || len(m.Set.Parts) != 1 || m.Origin == nil || m.Origin.Source != "fork" {
		t.Fatalf("manifest: set %+v, origin %+v", m.Set, m.Origin)
	}
	if left := w.forks(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
	restored, dsn := w.pg.CreateDB(t, "fork_set_restored")
	if code, _ := w.run(w.restoreEnv(), "restore", "--from", m.Key, "--to", dsn, "--jobs", "2"); code != ExitOK {
		t.Fatalf("restore --jobs 2: exit %d", code)
	}
	count := `SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders)`
	got, _ := w.pg.Query(restored, count)
	want, _ := w.pg.Query(name, count)
	if got != want || !strings.HasSuffix(strings.TrimSpace(want), "/20000") {
		t.Errorf("restored rows %q, want %q", got, want)
	}
}
