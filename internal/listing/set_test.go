package listing

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
)

// set writes a set of three streams (the dump and two parts) and its manifest; it returns the key.
func (b *bucket) set(backup string, at int, parts ...[]byte) string {
	b.t.Helper()
	key := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: backup, At: day(at, 3)})
	b.now = day(at, 3).Add(time.Minute)
	dump := []byte("PGDMP schema")
	b.put(key, dump)
	m := catalog.Manifest{ManifestVersion: catalog.SetManifestVersion, App: "shop", Database: "DATABASE", Backup: backup,
		BackupFinishedAt: day(at, 3), Bytes: int64(len(dump)), Key: key, Set: &catalog.Set{Jobs: len(parts)}}
	for i, p := range parts {
		b.put(catalog.PartKey(key, i+1), p)
		m.Set.Parts = append(m.Set.Parts, catalog.Part{Key: catalog.PartKey(key, i+1), Bytes: int64(len(p))})
	}
	b.putJSON(catalog.ManifestKey(key), m)
	return key
}

// A set is listed as one archive: its size the sum of its streams, "3 parts"; its parts are not
// listed on their own; a missing or resized part is a problem, and so are parts left without
// their dump and manifest.
func TestListSetsAsOneArchive(t *testing.T) {
	b := newBucket(t)
	good := b.set("p001", 1, []byte("PGDMP part one"), []byte("PGDMP part two!"))
	missing := b.set("p002", 2, []byte("PGDMP part one"), []byte("PGDMP part two!"))
	if err := b.s.Remove(context.Background(), catalog.PartKey(missing, 2)); err != nil {
		t.Fatal(err)
	}
	resized := b.set("p003", 3, []byte("PGDMP part one"))
	b.s.Overwrite(catalog.PartKey(resized, 1), []byte("PGDMP other"))
	leftover := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "p004", At: day(4, 3)})
	b.put(catalog.PartKey(leftover, 1), []byte("PGDMP lost"))
	b.now = day(5, 0)

	got, err := List(context.Background(), b.s, "", b.now)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Archive{}
	for _, a := range got {
		byKey[a.Key] = a
	}
	if len(got) != 4 {
		t.Fatalf("listed %d entries, want 4 (three sets and the leftover parts): %+v", len(got), got)
	}
	if a := byKey[good]; !a.OK() || a.Parts != 3 || a.Bytes != int64(len("PGDMP schema")+len("PGDMP part one")+len("PGDMP part two!")) {
		t.Errorf("the good set: %+v", a)
	}
	if a := byKey[missing]; a.OK() || !strings.Contains(strings.Join(a.Problems, " "), "part 2 ("+catalog.PartKey(missing, 2)+") is missing") {
		t.Errorf("a set missing a part: %+v", a.Problems)
	}
	if a := byKey[resized]; a.OK() || !strings.Contains(strings.Join(a.Problems, " "), "part 1 ("+catalog.PartKey(resized, 1)+") is 11 bytes in the store") {
		t.Errorf("a set with a resized part: %+v", a.Problems)
	}
	if a := byKey[leftover]; a.OK() || !strings.Contains(strings.Join(a.Problems, " "), "parts of a set") {
		t.Errorf("parts without their dump and manifest: %+v", a)
	}
	var text strings.Builder
	if err := WriteText(&text, Report{Destination: "mem://", Archives: got}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "0.0 KiB, 3 parts") {
		t.Errorf("the text does not show the set as one archive of 3 parts:\n%s", text.String())
	}
}
