package dumpsource

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A Heroku target dumped with pg_dump: the URL is the attachment's config var (here the real
// local database), the archive is filed under the app and attachment like a PGBackups one, and
// only the Platform API is asked — never the Data API's backups.
func TestHerokuTargetByConfigVar(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, url := shopDB(t, pg, 1000)
	const key = "hrku-dumpsource-5b1c0ffee42a"
	sim := herokusim.New(herokusim.Options{Token: key, PgDump: pg.Bin("pg_dump")})
	platform, data := herokusim.Serve(t, sim)
	sim.AddApp("shop")
	sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", url)
	api := heroku.New(heroku.Options{APIKey: key, PlatformURL: platform, DataURL: data, UserAgent: "pgoffsite-test"})

	j, mem, logs := newJob(t, &Source{Locate: Heroku{API: api}})
	res := j.Archive(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !strings.HasPrefix(res.Key, "shop/DATABASE/") || !strings.Contains(res.Key, "/shop-DATABASE-dump-") {
		t.Errorf("key %s", res.Key)
	}
	m := string(mem.Get(catalog.ManifestKey(res.Key)))
	for _, s := range []string{`"addon": "postgresql-`, `"source": "pg_dump"`, `"attachment": "DATABASE"`} {
		if !strings.Contains(m, s) {
			t.Errorf("manifest lacks %s:\n%s", s, m)
		}
	}
	for _, r := range sim.Requests() {
		if r.API != "platform" {
			t.Errorf("asked %s %s %s", r.API, r.Method, r.Path)
		}
	}
	if strings.Contains(logs.String()+m, password) || strings.Contains(logs.String(), "postgres://") {
		t.Error("the database URL reached the log or the manifest")
	}

	// An attachment whose config var is missing names it.
	_, err := Heroku{API: api}.Locate(context.Background(), archive.Target{App: "shop", Database: "HEROKU_POSTGRESQL_NOPE"})
	if err == nil {
		t.Error("an unknown attachment was located")
	}
}
