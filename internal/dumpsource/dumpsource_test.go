package dumpsource

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const password = "pa55-w0rd-never-seen"

// shopDB is a real database of three tables; its URL carries a password (the test server trusts
// local connections, so any will do) that must appear nowhere.
func shopDB(t *testing.T, pg *testenv.Postgres, rows int) (name, url string) {
	t.Helper()
	name, _ = pg.CreateDB(t, "shop")
	pg.Exec(t, name, fmt.Sprintf(`CREATE TABLE customers AS SELECT g AS id, md5(g::text) AS name FROM generate_series(1, %d) g;
		CREATE TABLE orders AS SELECT g AS id, g %% 100 AS customer, repeat(md5(g::text), 4) AS note FROM generate_series(1, %d) g;
		CREATE TABLE "Empty" (x int);`, rows/10, rows))
	return name, fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", pg.User, password, pg.Host, pg.Port, name)
}

func newJob(t *testing.T, src archive.Source) (*archive.Job, *memstore.Store, *testenv.Output) {
	logs := &testenv.Output{}
	mem := &memstore.Store{}
	return &archive.Job{Source: src, Destinations: []archive.Destination{{Name: "mem", Store: mem}}, Version: "test", Log: zerolog.New(logs)}, mem, logs
}

func envSource(url string) *Source {
	return &Source{Locate: Env{URLs: map[string]string{"SHOP_DATABASE_URL": url}}}
}

var envTarget = archive.Target{App: "env", Database: "SHOP_DATABASE_URL", Env: true}

func counts(t *testing.T, pg *testenv.Postgres, db string) string {
	t.Helper()
	out, err := pg.Query(db, `SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM "Empty")`)
	if err != nil {
		t.Fatalf("count rows: %v\n%s", err, out)
	}
	return strings.TrimSpace(out)
}

// An env:VAR target is dumped by pg_dump with Heroku's flags, streamed at unknown size, filed
// under VAR, described in the manifest, and restores to the same rows.
func TestEnvTargetArchivesAndRestores(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, url := shopDB(t, pg, 20000)
	j, mem, logs := newJob(t, envSource(url))
	res := j.Archive(context.Background(), envTarget)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !strings.HasPrefix(res.Key, "SHOP_DATABASE_URL/SHOP_DATABASE_URL/") || !strings.Contains(res.Key, "-dump-") {
		t.Errorf("key %s", res.Key)
	}
	info, ok := catalog.ParseKey(res.Key)
	if !ok || info.App != "SHOP_DATABASE_URL" || time.Since(info.FinishedAt) > time.Minute {
		t.Errorf("ParseKey(%s) = %+v, %v", res.Key, info, ok)
	}
	dump := mem.Get(res.Key)
	if int64(len(dump)) != res.Bytes || len(dump) < 100<<10 {
		t.Fatalf("%d bytes stored, result says %d", len(dump), res.Bytes)
	}
	m := mem.Get(catalog.ManifestKey(res.Key))
	for _, s := range []string{`"source": "pg_dump"`, `"env_var": "SHOP_DATABASE_URL"`, `"--quote-all-identifiers"`, `"mode": "pg_dump"`} {
		if !bytes.Contains(m, []byte(s)) {
			t.Errorf("manifest lacks %s:\n%s", s, m)
		}
	}

	restored, rdsn := pg.CreateDB(t, "restored")
	cmd := exec.Command(pg.Bin("pg_restore"), "--no-owner", "--exit-on-error", "-d", rdsn)
	cmd.Stdin = bytes.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	if got, want := counts(t, pg, restored), counts(t, pg, db); got != want || want != "2000/20000/0" {
		t.Errorf("restored rows %s, want %s", got, want)
	}
	if strings.Contains(logs.String(), password) || bytes.Contains(m, []byte(password)) {
		t.Error("the password reached the log or the manifest")
	}
}

// stub writes an executable script standing in for pg_dump.
func stub(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// A pg_dump older than the server is refused before it dumps anything, naming both versions.
func TestOldPgDumpIsRefused(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, url := shopDB(t, pg, 10)
	ran := filepath.Join(t.TempDir(), "ran")
	src := envSource(url)
	src.PgDump = stub(t, `if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 9.6.24"; exit 0; fi
touch `+ran+`
exit 1
`)
	j, mem, _ := newJob(t, src)
	res := j.Archive(context.Background(), envTarget)
	if res.Err == nil {
		t.Fatal("an old pg_dump was used")
	}
	server, _ := pg.Query("postgres", "SHOW server_version")
	for _, s := range []string{"env:SHOP_DATABASE_URL", "pg_dump 9.6", "older than the server's PostgreSQL " + strings.Fields(server)[0], "PG_DUMP_PATH"} {
		if !strings.Contains(res.Err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, res.Err)
		}
	}
	if _, err := os.Stat(ran); err == nil || mem.Len() != 0 {
		t.Error("the old pg_dump was run to dump")
	}
}

// Connection failures fail the target with psql's own words, before pg_dump runs: a closed port,
// a database that does not exist. No password in the error.
func TestConnectFailures(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, c := range []struct{ url, want string }{
		{fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/x?sslmode=disable", password, testenv.FreePort(t)), "Connection refused"},
		{fmt.Sprintf("postgres://%s:%s@%s:%d/no_such_db?sslmode=disable", pg.User, password, pg.Host, pg.Port), `database "no_such_db" does not exist`},
	} {
		j, mem, logs := newJob(t, envSource(c.url))
		res := j.Archive(context.Background(), envTarget)
		if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || !strings.Contains(res.Err.Error(), "env:SHOP_DATABASE_URL") {
			t.Errorf("err = %v, want %q and the target", res.Err, c.want)
		}
		if res.Err != nil && strings.Contains(res.Err.Error()+logs.String(), password) {
			t.Errorf("the password is in %v", res.Err)
		}
		if mem.Len() != 0 {
			t.Errorf("%d objects stored", mem.Len())
		}
	}
}

// pidWrapper is a pg_dump that records its process id, then becomes the real one.
func pidWrapper(t *testing.T, pg *testenv.Postgres) (path, pidFile string) {
	pidFile = filepath.Join(t.TempDir(), "pid")
	return stub(t, fmt.Sprintf("echo $$ > %s\nexec %s \"$@\"\n", pidFile, pg.Bin("pg_dump"))), pidFile
}

// pg_dump killed mid-dump, or its server session ended mid-dump: the stream ends with an error,
// nothing is published, and the target fails with pg_dump's own words.
func TestDumpFailsMidway(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, c := range []struct {
		name string
		stop func(t *testing.T, db, pidFile string)
		want string
	}{
		{"pg_dump killed", func(t *testing.T, db, pidFile string) {
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("kill", "-KILL", strings.TrimSpace(string(b))).CombinedOutput(); err != nil {
				t.Fatalf("kill: %v %s", err, out)
			}
		}, "pg_dump was killed (killed)"},
		{"server session ended", func(t *testing.T, db, pidFile string) {
			pg.Exec(t, "postgres", fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgoffsite'`, db))
		}, "pg_dump exited with status 1: pg_dump: error:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, url := shopDB(t, pg, 200000)
			src := envSource(url)
			var pidFile string
			src.PgDump, pidFile = pidWrapper(t, pg)
			j, mem, logs := newJob(t, src)
			mem.Hold = func() { c.stop(t, db, pidFile) }
			res := j.Archive(context.Background(), envTarget)
			if res.Err == nil || !strings.Contains(res.Err.Error(), c.want) || !strings.Contains(res.Err.Error(), "env:SHOP_DATABASE_URL") {
				t.Fatalf("err = %v, want %q and the target", res.Err, c.want)
			}
			if mem.Len() != 0 {
				t.Errorf("%d objects stored", mem.Len())
			}
			if strings.Contains(res.Err.Error()+logs.String(), password) {
				t.Error("the password reached the error or the log")
			}
			t.Log(res.Err)
		})
	}
}

// silentStub is a pg_dump that answers --version as the real one and otherwise runs script.
func silentStub(t *testing.T, pg *testenv.Postgres, script string) string {
	return stub(t, fmt.Sprintf("if [ \"$1\" = --version ]; then exec %s --version; fi\n%s\n", pg.Bin("pg_dump"), script))
}

// archiveWithin archives envTarget with src, failing t if that takes a minute.
func archiveWithin(t *testing.T, src *Source) (archive.Result, *memstore.Store) {
	t.Helper()
	j, mem, _ := newJob(t, src)
	done := make(chan archive.Result, 1)
	go func() { done <- j.Archive(context.Background(), envTarget) }()
	select {
	case res := <-done:
		return res, mem
	case <-time.After(time.Minute):
		t.Fatal("pg_dump was waited on for a minute")
		return archive.Result{}, nil
	}
}

// A pg_dump that writes its first bytes and then nothing for the silence limit while the archive
// waits is killed, and the target fails saying so: the silence counts from its last byte.
func TestSilentDumpIsKilled(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, url := shopDB(t, pg, 10)
	src := envSource(url)
	src.Silence = 500 * time.Millisecond
	src.PgDump = silentStub(t, pg, "printf PGDMP\nsleep 600")
	res, mem := archiveWithin(t, src)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "wrote nothing for 500ms and was killed") {
		t.Fatalf("err = %v", res.Err)
	}
	if mem.Len() != 0 {
		t.Errorf("%d objects stored", mem.Len())
	}
}

// Before its first byte pg_dump starts and connects, which a busy machine and PGCONNECT_TIMEOUT
// may make long: that is not silence. One that never writes is killed only once the start's
// grace and the silence limit have both passed, and the error says so.
func TestSilentDumpBeforeItsFirstByte(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, url := shopDB(t, pg, 10)

	// Slow to start (two silence limits), then a real dump: archived.
	src := envSource(url)
	src.Silence = 2 * time.Second
	src.PgDump = silentStub(t, pg, fmt.Sprintf("sleep 4\nexec %s \"$@\"", pg.Bin("pg_dump")))
	if res, mem := archiveWithin(t, src); res.Err != nil || mem.Len() == 0 {
		t.Fatalf("a pg_dump slow to start: %v, %d objects", res.Err, mem.Len())
	}

	// Never writes: killed after the grace and the limit.
	defer func(g time.Duration) { startGrace = g }(startGrace)
	startGrace = time.Second
	src.Silence = 500 * time.Millisecond
	src.PgDump = silentStub(t, pg, "sleep 600")
	start := time.Now()
	res, mem := archiveWithin(t, src)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "wrote nothing in the 1.5s after it started (1s to connect, then 500ms) and was killed") {
		t.Fatalf("err = %v", res.Err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("killed after %s, before the grace and the limit had passed", took)
	}
	if mem.Len() != 0 {
		t.Errorf("%d objects stored", mem.Len())
	}
}

// A slow store: pg_dump waits on the full pipe far longer than the silence limit, and that is
// fine (the archive is not waiting for pg_dump then).
func TestSlowStoreIsNotSilence(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, url := shopDB(t, pg, 200000)
	src := envSource(url)
	// Generous for a live pg_dump on a busy machine; the store holds it for longer.
	src.Silence = 2 * time.Second
	j, mem, _ := newJob(t, src)
	mem.Hold = func() { time.Sleep(5 * time.Second) } // the store's own pace, not synchronisation
	if res := j.Archive(context.Background(), envTarget); res.Err != nil {
		t.Fatal(res.Err)
	}
}

// Connection: the password leaves the URL, TLS is required off the loopback.
func TestConnection(t *testing.T) {
	for _, c := range []struct {
		db   Database
		dsn  string
		pass string
	}{
		{Database{URL: "postgres://u:p%2Fw@db.example.com:5432/d"}, "postgres://u@db.example.com:5432/d?sslmode=require", "p/w"},
		{Database{URL: "postgres://u:pw@db.example.com/d?sslmode=disable"}, "postgres://u@db.example.com/d?sslmode=disable", "pw"},
		{Database{URL: "postgres://u:pw@db.example.com/d?sslmode=disable", RequireTLS: true}, "postgres://u@db.example.com/d?sslmode=require", "pw"},
		{Database{URL: "postgres://u@127.0.0.1:5432/d", RequireTLS: true}, "postgres://u@127.0.0.1:5432/d", ""},
	} {
		got, err := Connection(c.db)
		if err != nil || got.DSN() != c.dsn || got.password != c.pass {
			t.Errorf("Connection(%s) = %s %q, %v; want %s %q", c.db.URL, got.DSN(), got.password, err, c.dsn, c.pass)
		}
	}
	if _, err := Connection(Database{URL: "mysql://u:secretpw@h/d"}); err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("err = %v", err)
	}
}
