package verify

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
	"github.com/pgoffsite/pgoffsite/internal/verify/settest"
)

// --- Sets (parallel dumps) read as one archive; restored in parallel sessions. ---

const setKey = "shop/DATABASE/2026/11/02/shop-DATABASE-p001-20261102T030000Z.dump"

// setSchema has what a restore must bring back identical: sequences (owned and free), a large
// object, a table with an odd quoted name in an odd schema, a partitioned table with a foreign
// key to it, indexes, a view, a trigger, and foreign keys between tables of different parts.
const setSchema = `
	CREATE SCHEMA "Odd Schema";
	CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
	CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, note text);
	CREATE INDEX orders_note ON orders (note);
	CREATE TABLE "Odd Schema"."Weird ""Name"". t" (id int PRIMARY KEY, customer_id int REFERENCES customers, v text CHECK (v <> ''));
	CREATE TABLE events (id int, at date, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
	CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
	CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
	CREATE INDEX events_payload ON events (payload);
	CREATE TABLE event_refs (id serial PRIMARY KEY, event_id int, event_at date, FOREIGN KEY (event_id, event_at) REFERENCES events);
	CREATE SEQUENCE counter START 100;
	SELECT nextval('counter') FROM generate_series(1, 7);
	CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 100;
	CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := coalesce(NEW.note, 'touched'); RETURN NEW; END$$;
	CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
	INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 200) g;
	INSERT INTO orders (customer_id, note) SELECT 1 + g % 200, md5(g::text) FROM generate_series(1, 5000) g;
	INSERT INTO "Odd Schema"."Weird ""Name"". t" SELECT g, 1 + g % 200, 'v' || g FROM generate_series(1, 300) g;
	INSERT INTO events SELECT g, date '2025-06-01' + (g % 400), md5(g::text) FROM generate_series(1, 3000) g;
	INSERT INTO event_refs (event_id, event_at) SELECT id, at FROM events WHERE id % 10 = 0;
	SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'));`

// setParts spreads the tables' data over two parts; event_refs stays in the dump.
var setParts = [][][2]string{
	{{"public", "orders"}, {"public", "events_2025"}},
	{{"public", "customers"}, {"Odd Schema", `Weird "Name". t`}, {"public", "events_2026"}},
}

var (
	setOnce   sync.Once
	setMade   settest.Set
	setSource string
)

// sourceSet is the set of a database of setSchema, made once, and the database's name.
func sourceSet(t *testing.T) (settest.Set, *testenv.Postgres, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	setOnce.Do(func() {
		name, dsn := pg.CreateDB(t, "set_src")
		pg.Exec(t, name, setSchema)
		setMade, setSource = settest.Dump(t, pg, dsn, setKey, setParts), name
	})
	if setSource == "" {
		t.Fatal("the source set could not be made")
	}
	return setMade, pg, setSource
}

// fingerprint is what must be equal between a database and its restore: the schema as
// pg_dump --schema-only prints it, every table's rows, every sequence's state, the large objects.
func fingerprint(t *testing.T, pg *testenv.Postgres, db string) string {
	t.Helper()
	schema, err := runOut(pg.Bin("pg_dump"), "--schema-only", "--no-owner", "-d", pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	// pg_dump's \restrict lines carry a random key per run.
	schema = regexp.MustCompile(`(?m)^\\(un)?restrict .*$`).ReplaceAllString(schema, "")
	data, err := pg.Query(db, `
		SELECT format('%s: %s rows, %s', c.oid::regclass, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1],
			(xpath('/row/h/text()', query_to_xml(format(CASE c.relkind WHEN 'S' THEN 'SELECT last_value || '' '' || is_called AS h FROM %s'
				ELSE 'SELECT md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS h FROM %s t' END, c.oid::regclass), false, true, '')))[1])
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1;
		SELECT format('large object %s: %s', oid, md5(lo_get(oid))) FROM pg_largeobject_metadata ORDER BY oid;`)
	if err != nil {
		t.Fatalf("fingerprint %s: %v: %s", db, err, data)
	}
	return schema + "\n" + data
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

func TestSetRestoreIsIdentical(t *testing.T) {
	set, pg, source := sourceSet(t)
	want := fingerprint(t, pg, source)
	if !strings.Contains(want, "large object") || !strings.Contains(want, "counter: 1 rows") || !strings.Contains(want, `Weird ""Name"". t`) {
		t.Fatalf("the source lacks what the test is about:\n%s", want)
	}
	for _, jobs := range []int{2, 4} {
		s := newStore(t)
		set.Store(t, s)
		name, dsn := pg.CreateDB(t, "set_restored")
		res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: jobs})
		if res.Err != nil {
			t.Fatalf("jobs %d: %v", jobs, res.Err)
		}
		if !res.Restored || res.Tables < 6 {
			t.Errorf("jobs %d: restored %v, %d tables", jobs, res.Restored, res.Tables)
		}
		if got := fingerprint(t, pg, name); got != want {
			t.Errorf("jobs %d: the restored database differs from the source:\n--- source\n%s\n--- restored\n%s", jobs, want, got)
		}
	}
}

// emptied checks that the database holds nothing again, and that err says so.
func emptied(t *testing.T, pg *testenv.Postgres, name, dsn string, err error) {
	t.Helper()
	if !errors.Is(err, pgrestore.ErrEmptied) || !strings.Contains(err.Error(), "empty again") {
		t.Errorf("the error does not say the database was emptied: %v", err)
	}
	objs, oerr := pgrestore.Objects(context.Background(), pgrestore.Options{URL: dsn, PgBinDir: pg.BinDir})
	if oerr != nil || len(objs) > 0 {
		t.Errorf("the database is not empty after the failed restore: %v %v", objs, oerr)
	}
	if n, _ := pg.Query(name, "SELECT count(*) FROM pg_largeobject_metadata"); !strings.HasPrefix(n, "0") {
		t.Errorf("large objects left: %s", n)
	}
}

func TestSetTamperedPartFailsNamingIt(t *testing.T) {
	set, pg, _ := sourceSet(t)
	// The second part's bytes are replaced by the first part's, size and all: only the hash tells.
	tampered := set
	tampered.Streams = append([][]byte{}, set.Streams...)
	tampered.Streams[2] = set.Streams[1]
	m := set.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	parts[1].Bytes = int64(len(set.Streams[1]))
	m.Set = &catalog.Set{Parts: parts, Jobs: 2}
	tampered.Manifest = m

	s := newStore(t)
	tampered.Store(t, s)
	res := Archive(context.Background(), s, setKey, Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 2 ("+catalog.PartKey(setKey, 2)+")") || !strings.Contains(res.Err.Error(), "SHA-256") {
		t.Fatalf("verify of a set with a tampered part: %v", res.Err)
	}

	name, dsn := pg.CreateDB(t, "set_tampered")
	res = Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 2") {
		t.Fatalf("restore of a set with a tampered part: %v", res.Err)
	}
	emptied(t, pg, name, dsn, res.Err)
}

func TestSetBrokenPartEmptiesTheDatabase(t *testing.T) {
	set, pg, _ := sourceSet(t)
	// A part whose manifest entry matches its bytes but whose data pg_restore cannot load: the
	// first part's again, whose rows are then loaded twice (primary keys collide only in
	// post-data, so the duplicate rows fail the unique indexes).
	broken := set
	broken.Streams = append(append([][]byte{}, set.Streams...), set.Streams[1])
	m := set.Manifest
	p := m.Set.Parts[0]
	p.Key = catalog.PartKey(setKey, 3)
	m.Set = &catalog.Set{Parts: append(append([]catalog.Part{}, m.Set.Parts...), p), Jobs: 3}
	broken.Manifest = m

	s := newStore(t)
	broken.Store(t, s)
	name, dsn := pg.CreateDB(t, "set_broken")
	res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "pg_restore failed") {
		t.Fatalf("restore of a set with a part that breaks pg_restore: %v", res.Err)
	}
	emptied(t, pg, name, dsn, res.Err)
}

func TestSetManifestNamesOnlyItsParts(t *testing.T) {
	set, _, _ := sourceSet(t)
	m := set.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	parts[0].Key = "shop/DATABASE/2026/11/01/other.dump"
	m.Set = &catalog.Set{Parts: parts}
	bad := set
	bad.Manifest = m
	s := newStore(t)
	bad.Store(t, s)
	res := Archive(context.Background(), s, setKey, Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "names part 1") {
		t.Fatalf("a manifest naming another object as its part: %v", res.Err)
	}
}
