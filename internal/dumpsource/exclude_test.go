package dumpsource

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// fixed locates every target at one database.
type fixed struct{ db Database }

func (f fixed) Locate(context.Context, archive.Target) (Database, error) { return f.db, nil }

// PG_DUMP_EXCLUDE_SCHEMA and PG_DUMP_EXCLUDE_TABLE_DATA reach every pg_dump, single-stream and
// each stream of a set, and the manifest's Args; a Heroku database also leaves out heroku_ext,
// as Heroku's own backups do (help.heroku.com/7U1BTYHB), keeping the extensions installed there,
// an env: target does not; a pattern that matches nothing is ignored by pg_dump. A table whose
// data is left out goes to no part.
func TestExclusionsAndHerokuExt(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, _ := pg.CreateDB(t, "excl")
	pg.Exec(t, db, `CREATE SCHEMA heroku_ext; CREATE EXTENSION pgcrypto SCHEMA heroku_ext;
		CREATE TABLE heroku_ext.ext_data AS SELECT g FROM generate_series(1, 10) g;
		CREATE SCHEMA scratch; CREATE TABLE scratch.tmp AS SELECT g FROM generate_series(1, 50000) g;
		CREATE TABLE audit_log AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 80000) g;
		CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 30000) g;
		CREATE TABLE customers AS SELECT g AS id FROM generate_series(1, 1000) g;`)
	url := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", pg.User, password, pg.Host, pg.Port, db)
	// Tables in heroku_ext, pgcrypto there, the schema scratch, then rows.
	shape := `SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'heroku_ext') || '/' ||
		(SELECT count(*) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'pgcrypto' AND nspname = 'heroku_ext') || '/' ||
		(SELECT count(*) FROM pg_namespace WHERE nspname = 'scratch') || '/' ||
		(SELECT count(*) FROM audit_log) || '/' || (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM customers)`
	for _, c := range []struct {
		name   string
		heroku bool
		jobs   int
		want   string
	}{
		{"env target", false, 1, "1/1/0/0/30000/1000"},
		{"Heroku target", true, 1, "0/1/0/0/30000/1000"},
		{"Heroku target, a set", true, 3, "0/1/0/0/30000/1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			loc := Database{URL: url, App: "shop", Name: "DATABASE"}
			if c.heroku {
				loc.Heroku = &catalog.HerokuOrigin{App: "shop", Attachment: "DATABASE"}
			}
			src := &Source{Locate: fixed{loc}, Jobs: c.jobs, ExcludeSchema: []string{"scratch", "nosuch_schema"}, ExcludeTableData: []string{"public.audit_*", "nosuch.table"}}
			j, mem, _ := newJob(t, src)
			res := j.Archive(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			m := string(mem.Get(catalog.ManifestKey(res.Key)))
			for _, s := range []string{`"--exclude-schema=scratch"`, `"--exclude-table-data=public.audit_*"`, `"--exclude-schema=nosuch_schema"`} {
				if !strings.Contains(m, s) {
					t.Errorf("manifest lacks %s", s)
				}
			}
			if got := strings.Contains(m, `"--exclude-schema=heroku_ext"`); got != c.heroku {
				t.Errorf("--exclude-schema=heroku_ext in the manifest: %v", got)
			}
			// A Heroku database restored into has heroku_ext already: the dump's CREATE EXTENSION
			// pgcrypto SCHEMA heroku_ext finds it there.
			var setup string
			if c.heroku {
				setup = "CREATE SCHEMA heroku_ext"
			}
			var restored string
			if c.jobs > 1 {
				sm := setManifest(t, mem, res.Key)
				for _, p := range sm.Set.Parts {
					if slices.Contains(p.Tables, "public.audit_log") || slices.Contains(p.Tables, "scratch.tmp") || slices.Contains(p.Tables, "heroku_ext.ext_data") {
						t.Errorf("a part carries data left out: %v", p.Tables)
					}
				}
				restored = restoreSet(t, pg, sm, mem.Get, setup)
			} else {
				restored = restoreOne(t, pg, mem.Get(res.Key), setup)
			}
			if got, err := pg.Query(restored, shape); err != nil || got != c.want {
				t.Errorf("restored %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

// The patterns are read as pg_dump reads them: folded unless quoted, * and ? as wildcards
// outside quotes, dots between names.
func TestPatternRegexps(t *testing.T) {
	for _, c := range []struct {
		pattern string
		names   []string // what each part must match
		not     []string
	}{
		{"Audit_*", []string{"audit_log"}, []string{"Audit_log", "xaudit_log"}},
		{`public."Big"?"Log"`, []string{"public", "Big Log"}, []string{"public", "big log"}},
		{`"a.b"."c*"`, []string{"a.b", "c*"}, []string{"a.b", "cd"}},
		{`"say ""hi"""`, []string{`say "hi"`}, nil},
	} {
		res := patternRegexps(c.pattern)
		if len(res) != len(c.names) {
			t.Errorf("%s: %q", c.pattern, res)
			continue
		}
		for i, re := range res {
			if !regexp.MustCompile(re).MatchString(c.names[i]) {
				t.Errorf("%s: %s does not match %q", c.pattern, re, c.names[i])
			}
			if c.not != nil && c.not[i] != c.names[i] && regexp.MustCompile(re).MatchString(c.not[i]) {
				t.Errorf("%s: %s matches %q", c.pattern, re, c.not[i])
			}
		}
	}
}

// restoreOne restores a single-stream dump into a new database.
func restoreOne(t *testing.T, pg *testenv.Postgres, dump []byte, setup string) string {
	t.Helper()
	db, dsn := restoreTarget(t, pg, setup)
	cmd := exec.Command(pg.Bin("pg_restore"), "--no-owner", "--exit-on-error", "-d", dsn)
	cmd.Stdin = bytes.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	return db
}

// share deals tables largest first to the stream with the fewest bytes, a part before stream 0
// on a tie, and drops parts left without a table.
func TestShare(t *testing.T) {
	tb := func(name string, n int64) table { return table{Schema: "public", Name: name, Bytes: n} }
	got := func(ss []streamShare) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%d:%s", s.bytes, strings.Join(s.names(), "+")))
		}
		return strings.Join(out, " ")
	}
	tables := []table{tb("e", 10), tb("a", 100), tb("c", 40), tb("b", 50), tb("d", 30)}
	if s := got(share(tables, 3)); s != "70:public.c+public.d 100:public.a 60:public.b+public.e" {
		t.Errorf("share(3) = %s", s)
	}
	if s := got(share(tables[:1], 4)); s != "0: 10:public.e" {
		t.Errorf("one table, four streams: %s", s)
	}
	if s := got(share(nil, 4)); s != "0:" {
		t.Errorf("no table: %s", s)
	}
}
