package pgrestore

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// What makes a database non-empty: anything a restore would meet outside the system schemas.
func TestObjects(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	_, empty := pg.CreateDB(t, "empty")
	if objs, err := Objects(ctx, Options{URL: empty, PgBinDir: pg.BinDir}); err != nil || len(objs) != 0 {
		t.Fatalf("a new database: %q %v, want empty", objs, err)
	}
	tests := []struct{ sql, want string }{
		{`CREATE TABLE sentinel (x int)`, "table public.sentinel"},
		{`CREATE TABLE "Odd Name" (x int)`, `table public."Odd Name"`},
		{`CREATE SEQUENCE counter`, "sequence public.counter"},
		{`CREATE VIEW v AS SELECT 1 AS one`, "view public.v"},
		{`CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one`, "materialized view public.mv"},
		{`CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`, "function public.f"},
		{`CREATE PROCEDURE pr() LANGUAGE sql AS 'SELECT 1'`, "procedure public.pr"},
		{`CREATE TYPE mood AS ENUM ('ok')`, "type public.mood"},
		{`CREATE TYPE pair AS (a int, b int)`, "type public.pair"},
		{`CREATE DOMAIN posint AS int CHECK (VALUE > 0)`, "domain public.posint"},
		{`CREATE SCHEMA billing`, "schema billing"},
		{`CREATE SCHEMA app; CREATE TABLE app.t (x int)`, "table app.t"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			name, dsn := pg.CreateDB(t, "objects")
			pg.Exec(t, name, tt.sql)
			objs, err := Objects(ctx, Options{URL: dsn, PgBinDir: pg.BinDir})
			if err != nil || !contains(objs, tt.want) {
				t.Errorf("after %s: %q %v, want %q among them", tt.sql, objs, err, tt.want)
			}
		})
	}
	// A temporary table of another session is not the database's.
	name, dsn := pg.CreateDB(t, "temp")
	pg.Exec(t, name, `CREATE TEMP TABLE scratch (x int)`)
	if objs, err := Objects(ctx, Options{URL: dsn, PgBinDir: pg.BinDir}); err != nil || len(objs) != 0 {
		t.Errorf("with a (gone) temporary table: %q %v, want empty", objs, err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// writeSink stands in for pg_restore's standard input.
type writeSink struct{ bytes.Buffer }

func (w *writeSink) Close() error { return nil }

// Whatever the sizes of the writes, all but the last holdBack bytes reach pg_restore, in order.
func TestWriteHoldsBackTheEnd(t *testing.T) {
	data := make([]byte, 200_000)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, sizes := range [][]int{{1}, {holdBack - 1}, {holdBack}, {holdBack + 1}, {32 << 10}, {7, holdBack * 3, 1, 100}} {
		var sink writeSink
		r := &Restore{stdin: &sink}
		for off, i := 0, 0; off < len(data); i++ {
			n := min(sizes[i%len(sizes)], len(data)-off)
			if k, err := r.Write(data[off : off+n]); k != n || err != nil {
				t.Fatalf("Write: %d %v", k, err)
			}
			off += n
		}
		if got := sink.Bytes(); !bytes.Equal(got, data[:len(data)-holdBack]) || !bytes.Equal(r.tail, data[len(data)-holdBack:]) {
			t.Errorf("writes of %v: %d bytes passed on and %d held back, want %d and the last %d", sizes, len(got), len(r.tail), len(data)-holdBack, holdBack)
		}
	}
}

var (
	dumpOnce sync.Once
	dumpData []byte
)

// dump is a pg_dump -Fc archive of a real database (customers 100 rows, orders 5000).
func dump(t *testing.T, pg *testenv.Postgres) []byte {
	t.Helper()
	dumpOnce.Do(func() {
		name, dsn := pg.CreateDB(t, "pgrestore_src")
		pg.Exec(t, name, `
			CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
			CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, note text);
			INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 100) g;
			INSERT INTO orders (customer_id, note) SELECT 1 + g % 100, md5(g::text) FROM generate_series(1, 5000) g;`)
		dumpData = pg.Dump(t, dsn)
	})
	return dumpData
}

// An aborted restore is rolled back, even when pg_restore has read all but the archive's end;
// a finished one is committed.
func TestAbortRollsBackFinishCommits(t *testing.T) {
	pg := testenv.StartPostgres(t)
	archive := dump(t, pg)
	ctx := context.Background()

	_, dsn := pg.CreateDB(t, "aborted")
	o := Options{URL: dsn, PgBinDir: pg.BinDir}
	r, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(r, bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	waitForTheEnd(t, pg, r)
	if err := r.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if objs, err := Objects(ctx, o); err != nil || len(objs) != 0 {
		t.Errorf("after Abort the database holds %q (%v), want nothing", objs, err)
	}

	r, err = Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(r, bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got, err := CountRows(ctx, o, nil, 2)
	if err != nil || len(got) != 0 {
		t.Fatalf("CountRows of nothing: %v %v", got, err)
	}
	if objs, err := Objects(ctx, o); err != nil || !contains(objs, "table public.orders") {
		t.Errorf("after Finish: %q %v", objs, err)
	}
}

// waitForTheEnd returns once r's pg_restore has read all it was given and waits, inside its
// transaction, for the rest (seen twice in a row); it fails the test if pg_restore ends instead.
func waitForTheEnd(t *testing.T, pg *testenv.Postgres, r *Restore) {
	t.Helper()
	q := `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgoffsite-restore-%' AND application_name NOT LIKE '%-watch'
		AND wait_event = 'ClientRead' AND backend_xid IS NOT NULL`
	deadline := time.Now().Add(30 * time.Second)
	seen := 0
	for seen < 2 {
		select {
		case <-r.exited:
			t.Fatalf("pg_restore ended before it was given the archive's end: %v", r.waitErr)
		case <-time.After(100 * time.Millisecond): // a poll interval
		}
		if n, err := pg.Query("postgres", q); err == nil && n == "1" {
			seen++
		} else {
			seen = 0
		}
		if time.Now().After(deadline) {
			t.Fatal("pg_restore never waited for the archive's end")
		}
	}
}

// A wrong password fails with the server's words, and no output carries the password; a right
// one reaches pg_restore and psql through PGPASSWORD.
func TestPassword(t *testing.T) {
	pg := testenv.StartPostgres(t)
	archive := dump(t, pg)
	ctx := context.Background()
	const password = "s3cr3t-Pa55word/with@odd:chars"
	name, _ := pg.CreateDB(t, "pw")
	pg.PasswordRole(t, "pgrestore_pw", password, name)
	pg.Exec(t, "postgres", `ALTER DATABASE "`+name+`" OWNER TO pgrestore_pw`)
	right := pg.PasswordRole(t, "pgrestore_pw", password, name)
	escaped := strings.TrimPrefix(url.UserPassword("pgrestore_pw", password).String(), "pgrestore_pw:")
	wrong := strings.Replace(right, ":"+escaped+"@", ":Wr0ng-pw-value@", 1)
	if wrong == right {
		t.Fatal("the wrong URL is the right one")
	}

	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("%s with a wrong password: %v", what, err)
		}
		for _, secret := range []string{password, "Wr0ng-pw-value", wrong, right} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows %q: %v", what, secret, err)
			}
		}
	}
	_, err := Objects(ctx, Options{URL: wrong, PgBinDir: pg.BinDir})
	check("Objects", err)
	r, err := Start(ctx, Options{URL: wrong, PgBinDir: pg.BinDir})
	if err != nil {
		t.Fatal(err)
	}
	_, cerr := io.Copy(r, bytes.NewReader(archive))
	if cerr != nil {
		check("restore", r.Abort())
	} else {
		check("restore", r.Finish())
	}

	o := Options{URL: right, PgBinDir: pg.BinDir}
	if r, err = Start(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(r, bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("restore with the right password: %v", err)
	}
	if objs, err := Objects(ctx, o); err != nil || !contains(objs, "table public.orders") {
		t.Errorf("after the restore: %q %v", objs, err)
	}
}

// A URL libpq cannot read is echoed by it, password and all: the scrubber removes it.
func TestUnreadableURLIsScrubbed(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const pw = "se%zzcret-token"
	_, err := Objects(context.Background(), Options{URL: "postgres://u:" + pw + "@127.0.0.1:1/db", PgBinDir: pg.BinDir})
	if err == nil || strings.Contains(err.Error(), "zzcret") || !strings.Contains(err.Error(), "invalid percent-encoded token") {
		t.Errorf("Objects: %v", err)
	}
	r, err := Start(context.Background(), Options{URL: "postgres://u:" + pw + "@127.0.0.1:1/db", PgBinDir: pg.BinDir})
	if err != nil {
		t.Fatal(err)
	}
	r.Write(dump(t, pg)) // pg_restore may have stopped reading already
	err = r.Finish()
	if err == nil || strings.Contains(err.Error(), "zzcret") || !strings.Contains(err.Error(), "invalid percent-encoded token") {
		t.Errorf("pg_restore: %v", err)
	}
}

// Cancelling the context (SIGTERM) ends pg_restore at once, and nothing is committed.
func TestCancelEndsTheRestore(t *testing.T) {
	pg := testenv.StartPostgres(t)
	archive := dump(t, pg)
	_, dsn := pg.CreateDB(t, "cancelled")
	o := Options{URL: dsn, PgBinDir: pg.BinDir}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(archive[:len(archive)/2]); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- r.Abort() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "pg_restore was interrupted; its transaction was rolled back") {
			t.Errorf("Abort after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pg_restore did not end when its context was cancelled")
	}
	if objs, err := Objects(context.Background(), o); err != nil || len(objs) != 0 {
		t.Errorf("after the interruption the database holds %q (%v)", objs, err)
	}
}
