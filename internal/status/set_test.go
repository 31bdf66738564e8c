package status

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// asSet makes the archive at key a set of the dump and parts of the given sizes.
func (b *bucket) asSet(t *testing.T, key string, at time.Time, sizes ...int64) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var m catalog.Manifest
	if err := json.Unmarshal(b.objects[catalog.ManifestKey(key)], &m); err != nil {
		t.Fatal(err)
	}
	m.ManifestVersion, m.Set = catalog.SetManifestVersion, &catalog.Set{Jobs: len(sizes)}
	for i, n := range sizes {
		k := catalog.PartKey(key, i+1)
		m.Set.Parts = append(m.Set.Parts, catalog.Part{Key: k, Bytes: n})
		b.objects[k] = []byte("x")
		b.infos[k] = store.Info{Size: n, Modified: at.Add(3 * time.Minute)}
	}
	blob, _ := json.Marshal(m)
	b.objects[catalog.ManifestKey(key)] = blob
	b.infos[catalog.ManifestKey(key)] = store.Info{Size: int64(len(blob)), Modified: at.Add(4 * time.Minute)}
}

// A set counts as one archive of the sum of its streams; a missing part makes it no archive,
// named; parts left without their dump and manifest are a problem, not a foreign object.
func TestSetsAreOneArchive(t *testing.T) {
	b := newBucket()
	keys := fortyDays(t, b, "shop")
	at := time.Date(2026, 12, 1, 2, 15, 0, 0, time.UTC)
	b.asSet(t, keys[0], at, 2_000_000, 3_000_000)
	e := Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE"}, opts())
	if !e.OK() || e.Archives != 40 || e.Newest == nil || e.Newest.Bytes != 1_040_000+5_000_000 {
		t.Fatalf("a set as the newest archive: ok %v, %d archives, newest %+v, problems %v", e.OK(), e.Archives, e.Newest, e.Problems)
	}
	total := e.TotalBytes

	yesterday := at.Add(-24 * time.Hour)
	b.asSet(t, keys[1], yesterday, 7)
	b.mu.Lock()
	delete(b.objects, catalog.PartKey(keys[1], 1))
	lost := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "p009", At: at.Add(time.Hour)})
	b.objects[catalog.PartKey(lost, 1)] = []byte("x")
	b.mu.Unlock()
	e = Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE"}, opts())
	all := strings.Join(e.Problems, "\n")
	if e.OK() || e.Archives != 39 || !strings.Contains(all, "part 1 ("+catalog.PartKey(keys[1], 1)+") is missing") ||
		!strings.Contains(all, "parts of a set ("+catalog.PartKey(lost, 1)) || e.TotalBytes >= total {
		t.Errorf("a set missing a part and lone parts: ok %v, %d archives, total %d (was %d), problems:\n%s", e.OK(), e.Archives, e.TotalBytes, total, all)
	}
}
