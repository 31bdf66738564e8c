// Package settest makes sets (parallel dumps) for tests as the backup does: one exported
// snapshot; stream 0, `pg_dump --snapshot=S <dumpsource.Args> --exclude-table-data=T` for each
// table a part carries; part n, `pg_dump --snapshot=S <dumpsource.Args> --data-only -t T...`;
// the streams stored at Key and PartKey(Key, n), and a manifest of SetManifestVersion last.
// A real backup with PG_DUMP_JOBS can take its place once it writes sets.
package settest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Set is a set made by Make: its manifest and the bytes of each stream (0: the dump).
type Set struct {
	Key      string
	Manifest catalog.Manifest
	Streams  [][]byte
}

// Pattern is a table as pg_dump's -t takes it: each name double-quoted.
func Pattern(schema, name string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(schema) + "." + q(name)
}

// Dump dumps the database at dsn as a set whose part n carries the data of parts[n-1] (tables
// as schema.name pairs), all from one snapshot.
func Dump(t testing.TB, pg *testenv.Postgres, dsn, key string, parts [][][2]string) Set {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The snapshot lives as long as the transaction that exported it: psql holds it open.
	holder := exec.CommandContext(ctx, pg.Bin("psql"), "-X", "-q", "-A", "-t", "-d", dsn)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); holder.Wait() }()
	fmt.Fprintln(stdin, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("settest: export a snapshot: %v", err)
	}
	snapshot := strings.TrimSpace(line)
	dump := func(extra ...string) []byte {
		args := append(append([]string{"--snapshot=" + snapshot}, dumpsource.Args...), extra...)
		cmd := exec.CommandContext(ctx, pg.Bin("pg_dump"), append(args, "--dbname="+dsn)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("settest: pg_dump %v: %v: %s", extra, err, stderr.String())
		}
		return out
	}
	var exclude []string
	for _, p := range parts {
		for _, tb := range p {
			exclude = append(exclude, "--exclude-table-data="+Pattern(tb[0], tb[1]))
		}
	}
	s := Set{Key: key, Streams: [][]byte{dump(exclude...)}}
	m := catalog.Manifest{ManifestVersion: catalog.SetManifestVersion, Key: key, Mode: "pg_dump", ArchivedAt: time.Now().UTC(),
		Set: &catalog.Set{Snapshot: snapshot, Jobs: len(parts)}}
	if info, ok := catalog.ParseKey(key); ok {
		m.App, m.Database, m.Backup = info.App, info.Database, info.Backup
	}
	m.Bytes, m.SHA256 = int64(len(s.Streams[0])), sum(s.Streams[0])
	m.Structure = structure(t, s.Streams[0])
	for i, p := range parts {
		args := []string{"--data-only"}
		var names []string
		for _, tb := range p {
			args = append(args, "-t", Pattern(tb[0], tb[1]))
			names = append(names, tb[0]+"."+tb[1])
		}
		b := dump(args...)
		s.Streams = append(s.Streams, b)
		m.Set.Parts = append(m.Set.Parts, catalog.Part{Key: catalog.PartKey(key, i+1), Bytes: int64(len(b)), SHA256: sum(b),
			Tables: names, Structure: structure(t, b)})
	}
	s.Manifest = m
	return s
}

// Encrypt is the set encrypted to r as the backup encrypts one: every stream with age, the key
// ending .dump.age, the manifest's sizes and hashes the ciphertexts', the plaintexts' beside.
func (s Set) Encrypt(t testing.TB, r *agecrypt.Recipients) Set {
	t.Helper()
	out := Set{Key: s.Key + catalog.EncryptedSuffix, Manifest: s.Manifest}
	seal := func(plain []byte) []byte {
		rd, _, err := r.EncryptReader(bytes.NewReader(plain), int64(len(plain)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, p := range s.Streams {
		out.Streams = append(out.Streams, seal(p))
	}
	m := &out.Manifest
	m.Key = out.Key
	m.Encryption = &catalog.Encryption{Format: "age", Recipients: r.Describe(), PlaintextBytes: s.Manifest.Bytes, PlaintextSHA256: s.Manifest.SHA256}
	m.Bytes, m.SHA256 = int64(len(out.Streams[0])), sum(out.Streams[0])
	set := *s.Manifest.Set
	set.Parts = nil
	for i, p := range s.Manifest.Set.Parts {
		c := out.Streams[i+1]
		p.Key, p.PlaintextBytes, p.PlaintextSHA256 = catalog.PartKey(out.Key, i+1), p.Bytes, p.SHA256
		p.Bytes, p.SHA256 = int64(len(c)), sum(c)
		set.Parts = append(set.Parts, p)
	}
	m.Set = &set
	return out
}

// Putter is where a set is stored: a store.Store, or any other way into a bucket.
type Putter interface {
	Put(ctx context.Context, obj store.Object, r io.Reader) error
}

// Store writes the set's streams and then its manifest to st.
func (s Set) Store(t testing.TB, st Putter) {
	t.Helper()
	for n, b := range s.Streams {
		key := s.Key
		if n > 0 {
			key = catalog.PartKey(s.Key, n)
		}
		Put(t, st, key, b)
	}
	mb, err := json.Marshal(s.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	Put(t, st, catalog.ManifestKey(s.Key), mb)
}

// Put writes one object.
func Put(t testing.TB, st Putter, key string, b []byte) {
	t.Helper()
	if err := st.Put(context.Background(), store.Object{Key: key, Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
		t.Fatalf("settest: put %s: %v", key, err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func structure(t testing.TB, b []byte) *pgdump.Summary {
	t.Helper()
	s, err := pgdump.Check(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("settest: check a stream: %v", err)
	}
	return &s
}

// Fingerprint is what must be equal between a database and its restore: the schema as
// pg_dump --schema-only prints it, every table's rows, every sequence's state, the large objects.
func Fingerprint(t testing.TB, pg *testenv.Postgres, db string) string {
	t.Helper()
	out, err := exec.Command(pg.Bin("pg_dump"), "--schema-only", "--no-owner", "-d", pg.DSN(db)).Output()
	if err != nil {
		t.Fatalf("settest: pg_dump --schema-only %s: %v", db, err)
	}
	// pg_dump's \restrict lines carry a random key per run.
	schema := regexp.MustCompile(`(?m)^\\(un)?restrict .*$`).ReplaceAllString(string(out), "")
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

// Schema has what a restore must bring back identical: sequences (owned and free), a large
// object, a table with an odd quoted name in an odd schema, a partitioned table with a foreign
// key to it, indexes, a view, a trigger, and foreign keys between tables of different parts.
const Schema = `
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

// Parts spreads the tables' data over two parts; event_refs stays in the dump.
var Parts = [][][2]string{
	{{"public", "orders"}, {"public", "events_2025"}},
	{{"public", "customers"}, {"Odd Schema", `Weird "Name". t`}, {"public", "events_2026"}},
}
