package dumpsource

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// PG_DUMP_COMPRESS reaches every stream's pg_dump (each stream's header says so) and the
// manifest's Args, and the archive restores whole; a method this pg_dump does not know is
// refused before pg_dump starts, naming the variable and what to do.
func TestCompress(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, _ := pg.CreateDB(t, "compress")
	pg.Exec(t, db, `CREATE TABLE a AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 40000) g;
		CREATE TABLE b AS SELECT g AS id, repeat(md5(g::text), 3) AS pad FROM generate_series(1, 30000) g;`)
	url := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", pg.User, password, pg.Host, pg.Port, db)
	loc := fixed{Database{URL: url, App: "shop", Name: "DATABASE"}}
	target := archive.Target{App: "shop", Database: "DATABASE_URL"}
	for _, c := range []struct {
		compress string
		jobs     int
		alg      string
		level    int
	}{
		{"0", 1, "none", 0},
		{"1", 2, "gzip", 1},
		{"9", 3, "gzip", 9},
	} {
		t.Run(fmt.Sprintf("PG_DUMP_COMPRESS=%s, %d streams", c.compress, c.jobs), func(t *testing.T) {
			j, mem, _ := newJob(t, &Source{Locate: loc, Jobs: c.jobs, Compress: c.compress})
			res := j.Archive(context.Background(), target)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if m := string(mem.Get(catalog.ManifestKey(res.Key))); !strings.Contains(m, `"--compress=`+c.compress+`"`) {
				t.Errorf("the manifest's args lack --compress=%s", c.compress)
			}
			keys := []string{res.Key}
			var restored string
			if c.jobs > 1 {
				sm := setManifest(t, mem, res.Key)
				for _, p := range sm.Set.Parts {
					keys = append(keys, p.Key)
				}
				restored = restoreSet(t, pg, sm, mem.Get, "")
			} else {
				restored = restoreOne(t, pg, mem.Get(res.Key), "")
			}
			for _, k := range keys {
				h, err := pgdump.ReadHeader(bytes.NewReader(mem.Get(k)))
				if err != nil {
					t.Fatal(err)
				}
				if h.Compression != c.alg || c.alg == "gzip" && h.CompressionLevel != c.level {
					t.Errorf("%s: compression %s level %d, want %s %d", k, h.Compression, h.CompressionLevel, c.alg, c.level)
				}
			}
			if got, err := pg.Query(restored, `SELECT (SELECT count(*) FROM a) || '/' || (SELECT count(*) FROM b)`); err != nil || got != "40000/30000" {
				t.Errorf("restored %q (%v)", got, err)
			}
		})
	}
	t.Run("a method, which pg_dump 16 brought", func(t *testing.T) {
		tools, err := FindTools(pg.Bin("pg_dump"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := tools.DumpVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		j, mem, _ := newJob(t, &Source{Locate: loc, PgDump: pg.Bin("pg_dump"), Compress: "zstd:3"})
		res := j.Archive(context.Background(), target)
		if v.Major >= compressNeeds {
			if res.Err != nil {
				t.Fatalf("pg_dump %s: %v", v.Text, res.Err)
			}
			if h, err := pgdump.ReadHeader(bytes.NewReader(mem.Get(res.Key))); err != nil || h.Compression != "zstd" {
				t.Errorf("%+v %v", h, err)
			}
			return
		}
		if res.Err == nil {
			t.Fatalf("pg_dump %s dumped with zstd", v.Text)
		}
		for _, want := range []string{"PG_DUMP_COMPRESS=zstd:3 needs pg_dump 16 or newer", "PG_DUMP_PATH"} {
			if !strings.Contains(res.Err.Error(), want) {
				t.Errorf("%v lacks %q", res.Err, want)
			}
		}
		if mem.Len() != 0 {
			t.Errorf("stored %d objects", mem.Len())
		}
	})
}
