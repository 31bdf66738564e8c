package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// maintenancePage is what Heroku's router serves during maintenance: status 200, HTML.
const maintenancePage = `<!DOCTYPE html><html><head><title>Heroku | Offline for Maintenance</title></head>
<body><h1>Offline for maintenance</h1></body></html>`

// maintenance serves h behind a router that answers the first n requests (all of them when n
// is negative) whose path contains only with the maintenance page.
func maintenance(t *testing.T, h http.Handler, n int64, only string) string {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, only) {
			h.ServeHTTP(w, r)
			return
		}
		if k := seen.Add(1); n < 0 || k <= n {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, maintenancePage)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBackupRidesOutAMaintenancePage: both APIs answer 200 with an HTML page for a moment;
// every target is retried and archived.
func TestBackupRidesOutAMaintenancePage(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.sim.AddApp("blog")
	w.database("shop", "DATABASE", 500)
	w.database("blog", "DATABASE", 500)
	env := w.env("shop blog")
	env["HEROKU_API_URL"] = maintenance(t, w.sim.Platform(), 2, "")
	env["HEROKU_DATA_API_URL"] = maintenance(t, w.sim.Data(), 2, "")
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, app := range []string{"shop", "blog"} {
		m, dump := w.manifest(app, "DATABASE")
		w.checkArchive(app, m, dump)
	}
	if strings.Contains(out, "invalid character") {
		t.Errorf("a decoder's message reached the output")
	}
}

// TestBackupMaintenancePageThatStays: the Data API keeps answering one app's transfers with
// the maintenance page; that target fails, after retrying, with a message that says so, and
// the other is archived.
func TestBackupMaintenancePageThatStays(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.sim.AddApp("blog")
	w.database("shop", "DATABASE", 500)
	w.database("blog", "DATABASE", 500)
	defer w.shortHerokuRetries()()
	env := w.env("shop blog")
	env["HEROKU_DATA_API_URL"] = maintenance(t, w.sim.Data(), -1, "/apps/blog/")
	code, out := w.run(env, "backup")
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)
	var failed string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "summary: FAILED") {
			failed += l + "\n"
		}
	}
	for _, s := range []string{"app=blog", `GET /client/v11/apps/blog/transfers: Heroku answered 200 OK with an HTML page (\"Heroku | Offline for Maintenance\") instead of JSON`, "attempts over"} {
		if !strings.Contains(failed, s) {
			t.Errorf("the failure lacks %q:\n%s", s, failed)
		}
	}
	if strings.Contains(failed, "app=shop") || strings.Contains(out, "invalid character") {
		t.Errorf("shop failed too, or a decoder's message:\n%s", failed)
	}
}

// TestCheckSaysHerokuAnsweredAnHTMLPage: a maintenance page that does not go away is named for
// what it is, after retrying.
func TestCheckSaysHerokuAnsweredAnHTMLPage(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	env := w.env("shop")
	env["HEROKU_API_URL"] = maintenance(t, w.sim.Platform(), -1, "")
	code, out := w.run(env, "check")
	if code != ExitFailed || !strings.Contains(out, `FAIL  HEROKU_API_KEY could not be checked: heroku: account: GET /account: Heroku answered 200 OK with an HTML page ("Heroku | Offline for Maintenance") instead of JSON`) ||
		!strings.Contains(out, "attempts over") || strings.Contains(out, "invalid character") {
		t.Errorf("exit %d; the output does not name the HTML page", code)
	}
}

// TestBackupCaptureWarnsOfDeletedManualBackup: the simulated plan keeps two manual backups
// and has two: capturing makes Heroku delete the oldest, and the run's log says so.
func TestBackupCaptureWarnsOfDeletedManualBackup(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	name, dsn := w.pg.CreateDB(t, "shop")
	w.pg.Exec(t, name, `CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 100);`)
	addon := w.sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:mini", dsn) // keeps 2 manual backups
	w.captureDirect(addon, "shop")
	w.captureDirect(addon, "shop")
	code, out := w.run(w.env("shop"), "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "delete the oldest manual backup") {
			line = l
		}
	}
	for _, s := range []string{"level=warn", "app=shop", "num_keep=2", "manual_backups=2", "deleted_backup=b001", "plan=heroku-postgresql:mini",
		"heroku-postgresql:mini keeps num_keep=2 manual backups and has 2 now", "BACKUP_MODE=latest"} {
		if !strings.Contains(line, s) {
			t.Errorf("the warning lacks %q: %q", s, line)
		}
	}

	// check says the same before any run, and that no Heroku schedule exists.
	code, out = w.run(w.env("shop"), "check")
	if code != ExitOK || !strings.Contains(out, "warn  shop:DATABASE_URL: BACKUP_MODE=capture: each capture makes Heroku delete the oldest manual backup of DATABASE (now b00") ||
		!strings.Contains(out, "heroku-postgresql:mini keeps num_keep=2 manual backups and has ") {
		t.Errorf("check: exit %d; no retention warning", code)
	}
	if !strings.Contains(out, "shop:DATABASE_URL: no Heroku backup schedule") {
		t.Errorf("check does not say that the database has no Heroku schedule")
	}

	// Once the database has a schedule (as `heroku pg:backups:schedule` makes it), check names it.
	req, _ := http.NewRequest("POST", w.data+"/client/v11/databases/"+addon+"/transfer-schedules",
		strings.NewReader(`{"hour":"02","timezone":"UTC","schedule_name":"DATABASE_URL"}`))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a schedule: %v %v", err, resp)
	}
	resp.Body.Close()
	_, out = w.run(w.env("shop"), "check")
	if !strings.Contains(out, "shop:DATABASE_URL: a Heroku backup schedule exists (DATABASE_URL") {
		t.Errorf("check does not name the database's Heroku schedule")
	}
}

// shortHerokuRetries makes the world's runs give a bad Heroku answer up within seconds instead
// of minutes, for tests of answers that never get better; it returns the undo.
func (w *world) shortHerokuRetries() func() {
	n := len(w.tuning)
	w.tune(func(f *Factory) { f.HerokuRetryBudget = 5 * time.Second })
	return func() { w.tuning = w.tuning[:n] }
}
