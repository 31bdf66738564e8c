package herokusim

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// An add-on provisioned through the Platform API: 202 provisioning, then provisioned with its
// config var on the app and a real, empty database behind it; DELETE removes the add-on, its
// variable and its database.
func TestAddonProvisioning(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), PostgresAdmin: pg.DSN("postgres"), ProvisionDelay: 300 * time.Millisecond})
	s.AddApp("ops")
	srv := httptest.NewServer(s.Platform())
	t.Cleanup(func() { srv.Close(); s.Close() })
	p := srv.URL

	if a := call(t, "POST", p+"/apps/ops/addons", token, map[string]any{"plan": "heroku-redis:mini"}); a.status != 422 {
		t.Errorf("unknown plan: %d", a.status)
	}
	if a := call(t, "POST", p+"/apps/nope/addons", token, map[string]any{"plan": "heroku-postgresql:essential-0"}); a.status != 404 {
		t.Errorf("unknown app: %d", a.status)
	}
	a := call(t, "POST", p+"/apps/ops/addons", token, map[string]any{"plan": "heroku-postgresql:essential-0", "name": "drill-one"})
	if a.status != 202 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	ad := a.obj(t)
	if ad["state"] != "provisioning" || ad["name"] != "drill-one" || len(ad["config_vars"].([]any)) != 0 || !rfc3339RE.MatchString(ad["created_at"].(string)) {
		t.Errorf("created add-on %v", ad)
	}
	if a := call(t, "POST", p+"/apps/ops/addons", token, map[string]any{"plan": "heroku-postgresql:essential-0", "name": "drill-one"}); a.status != 422 {
		t.Errorf("name taken: %d", a.status)
	}
	if vars := call(t, "GET", p+"/apps/ops/config-vars", token, nil).obj(t); len(vars) != 0 {
		t.Errorf("config vars while provisioning: %v", vars)
	}
	var got map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = call(t, "GET", p+"/apps/ops/addons/drill-one", token, nil).obj(t)
		if got["state"] == "provisioned" {
			break
		}
	}
	vars, _ := got["config_vars"].([]any)
	if got["state"] != "provisioned" || len(vars) != 1 || !strings.HasPrefix(vars[0].(string), "HEROKU_POSTGRESQL_") {
		t.Fatalf("add-on after the delay: %v", got)
	}
	name := vars[0].(string)
	cv := call(t, "GET", p+"/apps/ops/config-vars", token, nil).obj(t)
	dsn, _ := cv[name].(string)
	db, _, _ := strings.Cut(strings.TrimPrefix(dsn[strings.LastIndex(dsn, "/"):], "/"), "?")
	if db == "" {
		t.Fatalf("config vars %v lack %s", cv, name)
	}
	if n, err := pg.Query(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); err != nil || n != "0" {
		t.Errorf("the add-on's database: %q %v, want a fresh empty one", n, err)
	}
	if l := call(t, "GET", p+"/apps/ops/addons", token, nil).list(t); len(l) != 1 || l[0]["id"] != ad["id"] {
		t.Errorf("list: %v", l)
	}

	del := call(t, "DELETE", p+"/apps/ops/addons/"+ad["id"].(string), token, nil)
	if del.status != 200 || del.obj(t)["state"] != "deprovisioned" {
		t.Errorf("delete: %d %s", del.status, del.body)
	}
	if a := call(t, "GET", p+"/apps/ops/addons/drill-one", token, nil); a.status != 404 {
		t.Errorf("after delete: %d", a.status)
	}
	if a := call(t, "DELETE", p+"/apps/ops/addons/drill-one", token, nil); a.status != 404 {
		t.Errorf("second delete: %d", a.status)
	}
	if cv := call(t, "GET", p+"/apps/ops/config-vars", token, nil).obj(t); len(cv) != 0 {
		t.Errorf("config vars after delete: %v", cv)
	}
	if n, _ := pg.Query("postgres", "SELECT count(*) FROM pg_database WHERE datname = '"+db+"'"); n != "0" {
		t.Errorf("the add-on's database %s was not dropped", db)
	}
}

// The fault knobs: a provisioning that never ends, a DELETE that fails and leaves the add-on.
func TestAddonFaults(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), PostgresAdmin: pg.DSN("postgres"), ProvisionDelay: 100 * time.Millisecond})
	s.AddApp("ops")
	srv := httptest.NewServer(s.Platform())
	t.Cleanup(func() { srv.Close(); s.Close() })
	s.Faults().StallProvisioning(1)
	s.Faults().FailAddonDeletes(503, 1)
	a := call(t, "POST", srv.URL+"/apps/ops/addons", token, map[string]any{"plan": "heroku-postgresql:essential-0", "name": "stuck-one"})
	if a.status != 202 {
		t.Fatal(a.status)
	}
	// Once its database exists and the delay has passed, an add-on would be provisioned.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if l := s.Addons("ops"); len(l) == 1 && l[0].Database != "" && time.Since(l[0].Created) > 200*time.Millisecond {
			break
		}
	}
	for range 5 {
		if st := call(t, "GET", srv.URL+"/apps/ops/addons/stuck-one", token, nil).obj(t)["state"]; st != "provisioning" {
			t.Fatalf("a stalled add-on is %v", st)
		}
	}
	if a := call(t, "DELETE", srv.URL+"/apps/ops/addons/stuck-one", token, nil); a.status != 503 {
		t.Errorf("failed delete: %d", a.status)
	}
	if len(s.Addons("ops")) != 1 {
		t.Error("a failed delete removed the add-on")
	}
	if a := call(t, "DELETE", srv.URL+"/apps/ops/addons/stuck-one", token, nil); a.status != 200 || len(s.Addons("ops")) != 0 {
		t.Errorf("delete after the fault: %d", a.status)
	}
}

// A fork (config.fork, as `heroku addons:create ... -- --fork APP::DATABASE_URL` sends it):
// 202 provisioning with no config var, then provisioned with a database holding the source's
// rows; a fork of, or onto, an Essential plan and of an unknown database are refused with 422
// and nothing is created; CreatedAddons counts the one made.
func TestAddonFork(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), PostgresAdmin: pg.DSN("postgres"), ProvisionDelay: 300 * time.Millisecond})
	s.AddApp("ops")
	s.AddApp("shop")
	src, srcDSN := pg.CreateDB(t, "shop")
	pg.Exec(t, src, "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 1234)")
	s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", srcDSN)
	_, tinyDSN := pg.CreateDB(t, "tiny")
	s.AddDatabase("shop", "TINY", "heroku-postgresql:essential-0", tinyDSN)
	srv := httptest.NewServer(s.Platform())
	t.Cleanup(func() { srv.Close(); s.Close() })
	p := srv.URL

	for _, c := range []struct{ plan, fork string }{
		{"heroku-postgresql:standard-0", "shop::TINY_URL"},
		{"heroku-postgresql:essential-1", "shop::DATABASE_URL"},
		{"heroku-postgresql:standard-0", "shop::NOPE_URL"},
	} {
		a := call(t, "POST", p+"/apps/ops/addons", token, map[string]any{"plan": c.plan, "config": map[string]any{"fork": c.fork}})
		if a.status != 422 || !strings.Contains(string(a.body), "invalid_params") {
			t.Errorf("fork of %s onto %s: %d %s, want 422", c.fork, c.plan, a.status, a.body)
		}
	}
	if n := s.CreatedAddons(); n != 0 {
		t.Fatalf("%d add-ons created by refused forks", n)
	}
	a := call(t, "POST", p+"/apps/ops/addons", token, map[string]any{"plan": "heroku-postgresql:standard-0", "name": "fork-one",
		"config": map[string]any{"fork": "shop::DATABASE_URL"}})
	if a.status != 202 {
		t.Fatalf("fork: %d %s", a.status, a.body)
	}
	if ad := a.obj(t); ad["state"] != "provisioning" || len(ad["config_vars"].([]any)) != 0 {
		t.Errorf("fork while provisioning: %v", ad)
	}
	var got map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = call(t, "GET", p+"/apps/ops/addons/fork-one", token, nil).obj(t); got["state"] == "provisioned" {
			break
		}
	}
	if got["state"] != "provisioned" {
		t.Fatalf("fork after the delay: %v", got)
	}
	list := s.Addons("ops")
	if len(list) != 1 || list[0].ForkOf == "" || list[0].Database == "" || s.CreatedAddons() != 1 {
		t.Fatalf("add-ons %+v, %d created", list, s.CreatedAddons())
	}
	if n, err := pg.Query(list[0].Database, "SELECT count(*) FROM orders"); err != nil || strings.TrimSpace(n) != "1234" {
		t.Errorf("the fork holds %q rows (%v), want the source's 1234", n, err)
	}
	if a := call(t, "DELETE", p+"/apps/ops/addons/fork-one", token, nil); a.status != 200 || len(s.Addons("ops")) != 0 {
		t.Errorf("delete: %d, left %+v", a.status, s.Addons("ops"))
	}
}
