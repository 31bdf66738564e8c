package herokusim

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

var transferFields = []string{"uuid", "num", "from_name", "from_type", "from_url", "to_name", "to_type", "to_url",
	"options", "source_bytes", "processed_bytes", "succeeded", "warnings", "created_at", "started_at", "canceled_at",
	"updated_at", "finished_at", "deleted_at", "purged_at", "num_keep"}

// shopDB makes a real database with a few rows and a grant (which --no-acl leaves out).
func shopDB(t *testing.T, pg *testenv.Postgres) (name, dsn string) {
	name, dsn = pg.CreateDB(t, "sim")
	pg.Exec(t, name, `CREATE TABLE orders (id serial PRIMARY KEY, note text);
		INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 2000) g;
		GRANT SELECT ON orders TO PUBLIC;`)
	return name, dsn
}

func capture(t *testing.T, data, addonID string) map[string]any {
	t.Helper()
	a := call(t, "POST", data+"/client/v11/databases/"+addonID+"/backups", token, nil)
	if a.status != 201 {
		t.Fatalf("capture: %d %s", a.status, a.body)
	}
	return a.obj(t)
}

func transferPath(data, app string, id any) string {
	return data + "/client/v11/apps/" + app + "/transfers/" + toString(id)
}

// toString writes a transfer's number (a JSON number) or uuid for a path.
func toString(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatInt(int64(v), 10)
	case string:
		return v
	}
	return ""
}

// waitFinished polls a transfer until finished_at is set; it reports whether a running state
// (started_at set, finished_at null) was seen on the way.
func waitFinished(t *testing.T, data, app string, num any) (map[string]any, bool) {
	t.Helper()
	running := false
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		a := call(t, "GET", transferPath(data, app, num), token, nil)
		if a.status != 200 {
			t.Fatalf("poll: %d %s", a.status, a.body)
		}
		m := a.obj(t)
		if m["finished_at"] != nil {
			return m, running
		}
		running = running || m["started_at"] != nil
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	t.Fatal("the capture did not finish within 60 s")
	return nil, false
}

// waitStarted polls the transfer until Heroku says it has started.
func waitStarted(t *testing.T, data, app string, num any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a := call(t, "GET", transferPath(data, app, num), token, nil)
		if a.status != 200 {
			t.Fatalf("poll: %d %s", a.status, a.body)
		}
		if a.obj(t)["started_at"] != nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	t.Fatal("the capture did not start within 30 s")
}

func TestCaptureMakesARealDump(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, dsn := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 300 * time.Millisecond})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "HEROKU_POSTGRESQL_PINK", "heroku-postgresql:standard-0", dsn)
	_, data := Serve(t, s)

	started := capture(t, data, addon)
	for _, f := range transferFields {
		if _, ok := started[f]; !ok {
			t.Errorf("the 201 answer lacks %q", f)
		}
	}
	if started["num"] != 1.0 || started["from_name"] != "HEROKU_POSTGRESQL_PINK" || started["from_type"] != "pg_dump" ||
		started["to_name"] != "BACKUP" || started["to_type"] != "gof3r" || started["from_url"] != dsn ||
		!strings.HasPrefix(started["to_url"].(string), "https://") || started["num_keep"] != 25.0 {
		t.Errorf("201 answer %v", started)
	}
	for _, f := range []string{"started_at", "finished_at", "succeeded", "source_bytes", "canceled_at", "deleted_at", "purged_at"} {
		if started[f] != nil {
			t.Errorf("%s = %v at first, want null", f, started[f])
		}
	}
	if started["processed_bytes"] != 0.0 || !dataTimeRE.MatchString(started["created_at"].(string)) {
		t.Errorf("processed_bytes %v, created_at %v", started["processed_bytes"], started["created_at"])
	}

	done, running := waitFinished(t, data, "shop", started["num"])
	if !running {
		t.Error("no running state was observable")
	}
	if done["succeeded"] != true || done["uuid"] != started["uuid"] || !dataTimeRE.MatchString(done["finished_at"].(string)) {
		t.Fatalf("finished %v", done)
	}
	path, ok := s.Backup("shop", 1)
	if !ok {
		t.Fatal("Backup: no file for b001")
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(file, []byte("PGDMP")) || done["processed_bytes"] != float64(len(file)) || done["source_bytes"] == nil {
		t.Fatalf("file of %d bytes starting %q; transfer says processed %v source %v", len(file), file[:5], done["processed_bytes"], done["source_bytes"])
	}
	list, err := exec.Command(pg.Bin("pg_restore"), "--list", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore --list: %v: %s", err, list)
	}
	if !strings.Contains(string(list), "TABLE public orders") || !strings.Contains(string(list), "TABLE DATA public orders") {
		t.Fatalf("pg_restore --list does not show the table:\n%s", list)
	}
	if strings.Contains(string(list), " ACL ") {
		t.Fatalf("the dump carries privileges (want --no-acl):\n%s", list)
	}

	byUUID := call(t, "GET", transferPath(data, "shop", done["uuid"])+"?verbose=true", token, nil).obj(t)
	logs, ok := byUUID["logs"].([]any)
	if !ok || len(logs) == 0 {
		t.Fatalf("verbose logs %v", byUUID["logs"])
	}
	for _, l := range logs {
		l := l.(map[string]any)
		if !dataTimeRE.MatchString(l["created_at"].(string)) || l["level"] == "" || l["message"] == "" {
			t.Fatalf("log line %v", l)
		}
	}
	if _, ok := done["logs"]; ok {
		t.Error("logs without ?verbose=true")
	}

	u, _ := publicURL(t, data, "shop", 1)
	if got := mustGet(t, "GET", u); !bytes.Equal(got.body, file) {
		t.Fatalf("downloaded %d bytes, the backup has %d", len(got.body), len(file))
	}
}

func TestBillingAppRule(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, dsn := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 10 * time.Millisecond})
	s.AddApp("shop-core")
	s.AddApp("shop-web")
	addon := s.AddDatabase("shop-core", "DATABASE", "heroku-postgresql:standard-0", dsn)
	s.Attach(addon, "shop-web", "SHARED_DB", nil)
	_, data := Serve(t, s)

	started := capture(t, data, addon)
	done, _ := waitFinished(t, data, "shop-core", started["num"])
	if done["from_name"] != "DATABASE" || done["succeeded"] != true {
		t.Fatalf("transfer %v: want from_name DATABASE (the name on the billing app)", done)
	}
	if l := call(t, "GET", data+"/client/v11/apps/shop-core/transfers", token, nil).list(t); len(l) != 1 || l[0]["uuid"] != started["uuid"] {
		t.Fatalf("billing app's transfers %v", l)
	}
	if l := call(t, "GET", data+"/client/v11/apps/shop-web/transfers", token, nil).list(t); len(l) != 0 {
		t.Fatalf("attaching app's transfers %v, want none", l)
	}
	for _, p := range []string{"/transfers/1", "/transfers/" + started["uuid"].(string), "/transfers/1?verbose=true"} {
		if a := call(t, "GET", data+"/client/v11/apps/shop-web"+p, token, nil); a.status != 404 {
			t.Errorf("GET shop-web%s: %d, want 404", p, a.status)
		}
	}
	if a := call(t, "POST", data+"/client/v11/apps/shop-web/transfers/1/actions/public-url", token, nil); a.status != 404 {
		t.Errorf("public-url under the attaching app: %d, want 404", a.status)
	}
	if a := call(t, "GET", data+"/client/v11/apps/no-such-app/transfers", token, nil); a.status != 404 || a.obj(t)["id"] != "not_found" {
		t.Errorf("unknown app: %d %s", a.status, a.body)
	}
	publicURL(t, data, "shop-core", 1)
}

func TestCaptureFailures(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 10 * time.Millisecond})
	s.AddApp("shop")
	gone := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", pg.DSN("no_such_database_here"))
	_, data := Serve(t, s)

	errorLines := func(num any) []string {
		t.Helper()
		m := call(t, "GET", transferPath(data, "shop", num)+"?verbose=true", token, nil).obj(t)
		var out []string
		for _, l := range m["logs"].([]any) {
			if l := l.(map[string]any); l["level"] == "error" {
				out = append(out, l["message"].(string))
			}
		}
		return out
	}

	t.Run("pg_dump fails", func(t *testing.T) {
		started := capture(t, data, gone)
		done, _ := waitFinished(t, data, "shop", started["num"])
		if done["succeeded"] != false || done["canceled_at"] != nil {
			t.Fatalf("transfer %v", done)
		}
		lines := errorLines(started["num"])
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "pg_dump: error:") || !strings.Contains(strings.Join(lines, "\n"), `"no_such_database_here" does not exist`) {
			t.Fatalf("error logs %q", lines)
		}
		if _, ok := s.Backup("shop", int(started["num"].(float64))); ok {
			t.Error("Backup found a file for a failed capture")
		}
		if a := call(t, "POST", transferPath(data, "shop", started["num"])+"/actions/public-url", token, nil); a.status != 422 {
			t.Errorf("public-url of a failed backup: %d %s", a.status, a.body)
		}
	})

	t.Run("injected failure", func(t *testing.T) {
		_, dsn := shopDB(t, pg)
		ok := s.AddDatabase("shop", "HEROKU_POSTGRESQL_PINK", "heroku-postgresql:standard-0", dsn)
		s.Faults().FailCaptures(1, "pg_dump: error: connection to server lost")
		started := capture(t, data, ok)
		if done, _ := waitFinished(t, data, "shop", started["num"]); done["succeeded"] != false {
			t.Fatalf("transfer %v", done)
		}
		if lines := errorLines(started["num"]); strings.Join(lines, "|") != "pg_dump: error: connection to server lost" {
			t.Fatalf("error logs %q", lines)
		}
		again := capture(t, data, ok)
		if done, _ := waitFinished(t, data, "shop", again["num"]); done["succeeded"] != true {
			t.Fatalf("the next capture: %v", done)
		}
	})
}

func TestCancel(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, dsn := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump")})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", dsn)
	_, data := Serve(t, s)

	s.Faults().SlowCaptures(time.Hour)
	started := capture(t, data, addon)
	s.Faults().SlowCaptures(0)
	waitStarted(t, data, "shop", started["num"]) // cancel a capture that is running, not one queued
	if a := call(t, "POST", transferPath(data, "shop", started["num"])+"/actions/cancel", token, nil); a.status != 404 {
		t.Fatalf("cancel by number: %d, want 404 (the API wants the uuid)", a.status)
	}
	begin := time.Now()
	a := call(t, "POST", transferPath(data, "shop", started["uuid"])+"/actions/cancel", token, nil)
	m := a.obj(t)
	if a.status != 200 || m["canceled_at"] == nil || m["finished_at"] == nil || m["succeeded"] != false || time.Since(begin) > 5*time.Second {
		t.Fatalf("cancel: %d %v after %s", a.status, m, time.Since(begin))
	}
	if _, ok := s.Backup("shop", 1); ok {
		t.Error("a cancelled backup has a file")
	}
}

// Numbers are one sequence per app; each database keeps its plan's num_keep manual backups, and
// a capture beyond it deletes that database's oldest manual backup: no longer listed, no longer
// downloadable, still readable by number with deleted_at set.
func TestNumbersAndRetention(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, dsnA := shopDB(t, pg)
	_, dsnB := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 10 * time.Millisecond})
	s.AddApp("shop")
	a := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:mini", dsnA)
	b := s.AddDatabase("shop", "HEROKU_POSTGRESQL_PINK", "heroku-postgresql:mini", dsnB)
	_, data := Serve(t, s)

	for i, addon := range []string{a, b, a, a} {
		started := capture(t, data, addon)
		if started["num"] != float64(i+1) {
			t.Fatalf("capture %d got num %v: one sequence per app", i+1, started["num"])
		}
		if started["num_keep"] != 2.0 {
			t.Errorf("num_keep %v on a mini plan, want 2", started["num_keep"])
		}
		waitFinished(t, data, "shop", started["num"])
	}
	listed := map[float64]bool{}
	for _, tr := range call(t, "GET", data+"/client/v11/apps/shop/transfers", token, nil).list(t) {
		listed[tr["num"].(float64)] = true
	}
	// b001 is A's third-newest backup: retired. b002 is B's only one; b003 and b004 are kept.
	if listed[1] || !listed[2] || !listed[3] || !listed[4] {
		t.Fatalf("listed by num: %v, want 2, 3, 4", listed)
	}
	if g := call(t, "GET", transferPath(data, "shop", 1.0), token, nil); g.status != 200 || g.obj(t)["deleted_at"] == nil {
		t.Fatalf("retired backup by number: %d %s", g.status, g.body)
	}
	if p := call(t, "POST", transferPath(data, "shop", 1.0)+"/actions/public-url", token, nil); p.status != 404 {
		t.Fatalf("public-url of a retired backup: %d %s", p.status, p.body)
	}
	if _, ok := s.Backup("shop", 1); !ok {
		t.Error("a retired backup's file is gone; tests still compare against it")
	}
	if d := call(t, "DELETE", data+"/client/v11/apps/shop/transfers/3", token, nil); d.status != 200 || d.obj(t)["deleted_at"] == nil {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	for _, tr := range call(t, "GET", data+"/client/v11/apps/shop/transfers", token, nil).list(t) {
		if tr["num"] == 3.0 {
			t.Fatal("a deleted backup is still listed")
		}
	}
}
