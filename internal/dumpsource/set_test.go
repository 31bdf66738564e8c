package dumpsource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// variedDB is a database with what a set must bring back whole: a sequence, a large object, a
// table with a quoted odd name, a partitioned table, and a foreign key between two tables that
// land in different streams.
func variedDB(t *testing.T, pg *testenv.Postgres) (name, url string) {
	t.Helper()
	name, _ = pg.CreateDB(t, "varied")
	pg.Exec(t, name, `
		CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 3) AS pad FROM generate_series(1, 150000) g;
		CREATE TABLE parents (id int PRIMARY KEY, pad text);
		INSERT INTO parents SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 60000) g;
		CREATE TABLE children (id serial PRIMARY KEY, parent int NOT NULL REFERENCES parents(id), pad text);
		INSERT INTO children (parent, pad) SELECT 1 + g % 60000, repeat(md5(g::text), 2) FROM generate_series(1, 100000) g;
		CREATE TABLE events (id int, at date, what text) PARTITION BY RANGE (at);
		CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO events SELECT g, date '2024-01-01' + (g % 700), md5(g::text) FROM generate_series(1, 40000) g;
		CREATE INDEX ON events (at);
		CREATE TABLE "Odd ""Name"".x" (id int, "Mixed Case" text);
		INSERT INTO "Odd ""Name"".x" SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
		CREATE SEQUENCE counter; SELECT setval('counter', 4242);
		SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'));`)
	return name, fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", pg.User, password, pg.Host, pg.Port, name)
}

// restoreTarget is a new database to restore into, with setup (SQL) run in it when given.
func restoreTarget(t *testing.T, pg *testenv.Postgres, setup string) (db, dsn string) {
	t.Helper()
	db, dsn = pg.CreateDB(t, "restored")
	if setup != "" {
		pg.Exec(t, db, setup)
	}
	return db, dsn
}

// restoreSet restores a set by hand, as a parallel restore does: stream 0's pre-data, then the
// data of stream 0 and of every part, then stream 0's post-data.
func restoreSet(t *testing.T, pg *testenv.Postgres, m catalog.Manifest, get func(key string) []byte, setup string) string {
	t.Helper()
	db, dsn := restoreTarget(t, pg, setup)
	run := func(body []byte, args ...string) {
		cmd := exec.Command(pg.Bin("pg_restore"), append([]string{"--no-owner", "--exit-on-error", "-d", dsn}, args...)...)
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_restore %v: %v\n%s", args, err, out)
		}
	}
	first := get(m.Key)
	run(first, "--section=pre-data")
	run(first, "--section=data")
	for _, p := range m.Set.Parts {
		run(get(p.Key), "--section=data")
	}
	run(first, "--section=post-data")
	return db
}

func setManifest(t *testing.T, mem *memstore.Store, key string) catalog.Manifest {
	t.Helper()
	var m catalog.Manifest
	if err := json.Unmarshal(mem.Get(catalog.ManifestKey(key)), &m); err != nil {
		t.Fatal(err)
	}
	if m.ManifestVersion != catalog.SetManifestVersion || m.Set == nil {
		t.Fatalf("manifest_version %d, set %v: not a set's manifest", m.ManifestVersion, m.Set)
	}
	return m
}

// schema is pg_dump --schema-only of db, without the random \restrict key of newer pg_dumps.
func schema(t *testing.T, pg *testenv.Postgres, db string) string {
	t.Helper()
	out, err := exec.Command(pg.Bin("pg_dump"), "--schema-only", "--no-owner", "--no-acl", "-d", pg.DSN(db)).Output()
	if err != nil {
		t.Fatalf("pg_dump --schema-only %s: %v", db, err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict`) && !strings.HasPrefix(l, `\unrestrict`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

const identityQuery = `SELECT (SELECT count(*) FROM big) || '/' || (SELECT count(*) FROM parents) || '/' ||
	(SELECT count(*) FROM children) || '/' || (SELECT count(*) FROM events_2024) || '/' || (SELECT count(*) FROM events_2025) || '/' ||
	(SELECT count(*) FROM "Odd ""Name"".x") || '/' || (SELECT last_value FROM counter) || '/' || (SELECT last_value FROM children_id_seq) || '/' ||
	(SELECT string_agg(md5(lo_get(oid)), ',' ORDER BY oid) FROM pg_largeobject_metadata) || '/' || (SELECT sum(hashtext(pad)) FROM big)`

// PG_DUMP_JOBS=4 stores a set: the first stream and its parts, each with its tables, checked and
// hashed, the manifest (version 2) naming them with sizes and hashes that match what is stored.
// Restored by hand as a parallel restore does, it equals the source: schema, rows, sequences and
// large objects.
func TestSetIdentity(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, url := variedDB(t, pg)
	src := envSource(url)
	src.Jobs = 4
	j, mem, logs := newJob(t, src)
	res := j.Archive(context.Background(), envTarget)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	m := setManifest(t, mem, res.Key)
	if m.Set.Jobs != 4 || len(m.Set.Parts) != 3 || m.Set.Snapshot == "" {
		t.Fatalf("set %+v", m.Set)
	}
	if got := mem.Get(res.Key); int64(len(got)) != m.Bytes {
		t.Errorf("stream 0: %d bytes stored, manifest %d", len(got), m.Bytes)
	}
	if res.Bytes != m.StoredBytes() {
		t.Errorf("the result gives %d bytes, the whole set has %d", res.Bytes, m.StoredBytes())
	}
	where := map[string]int{}
	for i, p := range m.Set.Parts {
		if p.Key != catalog.PartKey(res.Key, i+1) {
			t.Errorf("part %d key %s", i+1, p.Key)
		}
		body := mem.Get(p.Key)
		if int64(len(body)) != p.Bytes || sha(body) != p.SHA256 || p.Structure == nil || len(p.Tables) == 0 {
			t.Errorf("part %d: %d bytes, sha %s; manifest %+v", i+1, len(body), sha(body), p)
		}
		for _, tb := range p.Tables {
			where[tb] = i + 1
		}
	}
	if where["public.parents"] == where["public.children"] {
		t.Errorf("parents and children share a stream (%v): the foreign key across streams is not tested", where)
	}
	if where["public.big"] == 0 {
		t.Errorf("the biggest table is not in a part: %v", where)
	}
	restored := restoreSet(t, pg, m, mem.Get, "")
	if got, want := schema(t, pg, restored), schema(t, pg, db); got != want {
		t.Errorf("the restored schema differs from the source's:\n%s\n----\n%s", got, want)
	}
	want, err := pg.Query(db, identityQuery)
	if err != nil {
		t.Fatal(want, err)
	}
	if got, err := pg.Query(restored, identityQuery); err != nil || got != want {
		t.Errorf("restored %s (%v), source %s", got, err, want)
	}
	for _, s := range []string{"parallel pg_dump started", `"stream_03":`, "set stored", `"stream":"part 02"`} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks %s:\n%s", s, logs)
		}
	}
	if strings.Contains(logs.String()+string(mem.Get(catalog.ManifestKey(res.Key))), password) {
		t.Error("the password reached the log or the manifest")
	}
}

// partWrapper is pg_dump, started 300 ms late when it dumps a part (--data-only): a worker that
// starts later than the first, as on a loaded machine.
func partWrapper(t *testing.T, pg *testenv.Postgres) string {
	return stub(t, fmt.Sprintf("for a in \"$@\"; do [ \"$a\" = --data-only ] && sleep 0.3; done\nexec %s \"$@\"\n", pg.Bin("pg_dump")))
}

// writer inserts matching rows into a and b, one of each per transaction, every few ms, until
// stopped.
func writer(t *testing.T, pg *testenv.Postgres, db string) (stop func()) {
	cmd := exec.Command(pg.Bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.DSN(db))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				in.Close()
				return
			case <-time.After(3 * time.Millisecond):
			}
			fmt.Fprintf(in, "BEGIN; INSERT INTO a VALUES (%d, md5('%d')); INSERT INTO b VALUES (%d, md5('%d')); COMMIT;\n", -i-1, i, -i-1, i)
		}
	}()
	return func() { close(done); wg.Wait(); _ = cmd.Wait() }
}

// Consistency: while a writer commits matching rows to a and b, a PG_DUMP_JOBS=4 dump (its parts
// starting late) restores with a and b agreeing, every stream having read one snapshot; the
// same tables dumped by plain concurrent pg_dumps, one per table without the snapshot, do not.
func TestSetConsistency(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, _ := pg.CreateDB(t, "consistent")
	pg.Exec(t, db, `CREATE TABLE a (id int, pad text); CREATE TABLE b (id int, pad text);
		INSERT INTO a SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;
		INSERT INTO b SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;
		CREATE TABLE c AS SELECT g AS id FROM generate_series(1, 1000) g;`)
	url := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", pg.User, password, pg.Host, pg.Port, db)
	agree := `SELECT (SELECT count(*) FROM a) || '/' || (SELECT count(*) FROM b)`

	stop := writer(t, pg, db)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	src := envSource(url)
	src.Jobs, src.PgDump = 4, partWrapper(t, pg)
	j, mem, _ := newJob(t, src)
	res := j.Archive(context.Background(), envTarget)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	m := setManifest(t, mem, res.Key)
	restored := restoreSet(t, pg, m, mem.Get, "")
	got, err := pg.Query(restored, agree)
	if n := strings.Split(got, "/"); err != nil || len(n) != 2 || n[0] != n[1] || n[0] == "300000" {
		t.Errorf("the set restored a/b = %s (%v): the streams did not read one snapshot, or the writer wrote nothing", got, err)
	}

	// Without the snapshot: pg_dump -t a, and pg_dump -t b starting as late as the parts did.
	plain, pdsn := pg.CreateDB(t, "plain")
	pg.Exec(t, plain, `CREATE TABLE a (id int, pad text); CREATE TABLE b (id int, pad text);`)
	var wg sync.WaitGroup
	dumps := make([][]byte, 2)
	for i, tb := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			out, err := exec.Command(pg.Bin("pg_dump"), "-Fc", "--data-only", "-t", tb, "-d", pg.DSN(db)).Output()
			if err != nil {
				t.Errorf("pg_dump -t %s: %v", tb, err)
			}
			dumps[i] = out
		}()
	}
	wg.Wait()
	for _, d := range dumps {
		cmd := exec.Command(pg.Bin("pg_restore"), "--exit-on-error", "-d", pdsn)
		cmd.Stdin = bytes.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_restore: %v\n%s", err, out)
		}
	}
	got, err = pg.Query(plain, agree)
	if n := strings.Split(got, "/"); err != nil || len(n) != 2 || n[0] == n[1] {
		t.Errorf("plain pg_dumps per table restored a/b = %s (%v): they should disagree, or this test shows nothing", got, err)
	}
	t.Logf("a/b with one snapshot: agree; with a pg_dump per table: %s", got)
}

// slowParts stores like memstore, but takes a part's bytes slowly: its pg_dump stays alive
// behind a full pipe while the test acts.
type slowParts struct {
	*memstore.Store
}

func (s slowParts) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if _, _, ok := catalog.PartOf(obj.Key); ok {
		r = &throttled{r: r}
	}
	return s.Store.Put(ctx, obj, r)
}

type throttled struct{ r io.Reader }

func (t *throttled) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return t.r.Read(p[:min(len(p), 16<<10)])
}

// sessions are the pgoffsite sessions of db in pg_stat_activity.
func sessions(t *testing.T, pg *testenv.Postgres, db string) string {
	t.Helper()
	out, err := pg.Query("postgres", fmt.Sprintf(`SELECT string_agg(application_name, ',') FROM pg_stat_activity WHERE datname = '%s' AND application_name LIKE 'pgoffsite%%'`, db))
	if err != nil {
		t.Fatal(out, err)
	}
	return out
}

// noSessionsWithin waits for db's pgoffsite sessions to be gone, failing t after 10 s.
func noSessionsWithin(t *testing.T, pg *testenv.Postgres, db string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := sessions(t, pg, db)
		if s == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgoffsite sessions left after the set failed: %s", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A part's pg_dump ended by the server (pg_terminate_backend on its application_name), or killed:
// the set fails naming the part, nothing is stored, every other pg_dump is stopped and the
// snapshot's session is gone.
func TestSetPartFails(t *testing.T) {
	pg := testenv.StartPostgres(t)
	// Each pg_dump writes its process id to a file named by its session's application_name.
	pids := t.TempDir()
	pgDump := stub(t, fmt.Sprintf("echo $$ > %s/$PGAPPNAME\nexec %s \"$@\"\n", pids, pg.Bin("pg_dump")))
	for _, c := range []struct {
		name string
		stop func(t *testing.T, db string)
		want string
	}{
		{"session terminated", func(t *testing.T, db string) {
			pg.Exec(t, "postgres", fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgoffsite-part-01'`, db))
		}, "part 01 of the set failed"},
		{"pg_dump killed", func(t *testing.T, db string) {
			b, err := os.ReadFile(filepath.Join(pids, "pgoffsite-part-01"))
			if err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("kill", "-KILL", strings.TrimSpace(string(b))).CombinedOutput(); err != nil {
				t.Fatalf("kill part 01's pg_dump: %v %s", err, out)
			}
		}, "part 01 of the set failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, url := variedDB(t, pg)
			src := envSource(url)
			src.Jobs, src.PgDump = 3, pgDump
			j, mem, _ := newJob(t, src)
			j.Destinations = []archive.Destination{{Name: "mem", Store: slowParts{mem}}}
			var seen atomic.Value
			mem.Hold = func() {
				seen.Store(sessions(t, pg, db))
				c.stop(t, db)
			}
			start := time.Now()
			res := j.Archive(context.Background(), envTarget)
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", res.Err, c.want)
			}
			if s, _ := seen.Load().(string); !strings.Contains(s, "pgoffsite-snapshot") || !strings.Contains(s, "pgoffsite-part-01") {
				t.Errorf("sessions while the set ran: %q", s)
			}
			if mem.Len() != 0 {
				t.Errorf("%d objects stored: %v", mem.Len(), keys(mem))
			}
			noSessionsWithin(t, pg, db)
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("the failed set took %s", took)
			}
			t.Log(res.Err)
		})
	}
}

func keys(mem *memstore.Store) []string {
	l, _ := mem.List(context.Background(), "")
	var out []string
	for _, o := range l.Objects {
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
