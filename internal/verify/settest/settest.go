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
	"os/exec"
	"strings"
	"testing"
	"time"

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

// Store writes the set's streams and then its manifest to st.
func (s Set) Store(t testing.TB, st store.Store) {
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
func Put(t testing.TB, st store.Store, key string, b []byte) {
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
