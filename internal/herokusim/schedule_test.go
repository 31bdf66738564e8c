package herokusim

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestPlanRetention(t *testing.T) {
	for plan, want := range map[string]retention{
		"heroku-postgresql:mini":        {2, 5, 1, 0},
		"heroku-postgresql:essential-0": {5, 7, 1, 0},
		"heroku-postgresql:standard-2":  {25, 7, 4, 0},
		"heroku-postgresql:premium-0":   {50, 7, 8, 12},
		"heroku-postgresql:private-4":   {50, 7, 8, 12},
		"heroku-postgresql:shield-0":    {50, 7, 8, 12},
		"heroku-postgresql:newplan-9":   {2, 5, 1, 0},
	} {
		if got := planRetention(plan); got != want {
			t.Errorf("%s: %+v, want %+v", plan, got, want)
		}
	}
}

func TestTransferSchedules(t *testing.T) {
	s := New(Options{Token: token})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://127.0.0.1:1/x")
	_, data := Serve(t, s)
	p := data + "/client/v11/databases/" + addon + "/transfer-schedules"

	if l := call(t, "GET", p, token, nil); l.status != 200 || len(l.list(t)) != 0 {
		t.Fatalf("no schedule yet: %d %s", l.status, l.body)
	}
	for _, bad := range []map[string]any{
		{"hour": "24", "timezone": "UTC", "schedule_name": "DATABASE_URL"},
		{"hour": "two", "timezone": "UTC", "schedule_name": "DATABASE_URL"},
		{"hour": "02", "timezone": "Mars/Olympus_Mons", "schedule_name": "DATABASE_URL"},
	} {
		if a := call(t, "POST", p, token, bad); a.status != 422 || a.obj(t)["id"] != "invalid_params" {
			t.Errorf("POST %v: %d %s, want 422 invalid_params", bad, a.status, a.body)
		}
	}
	created := call(t, "POST", p, token, map[string]any{"hour": "02", "timezone": "America/Los_Angeles", "schedule_name": "DATABASE_URL"})
	if created.status != 201 {
		t.Fatalf("POST: %d %s", created.status, created.body)
	}
	// Scheduling the same name again moves the schedule rather than adding one.
	call(t, "POST", p, token, map[string]any{"hour": 3, "timezone": "UTC", "schedule_name": "DATABASE_URL"})
	l := call(t, "GET", p, token, nil).list(t)
	if len(l) != 1 {
		t.Fatalf("schedules: %v", l)
	}
	sc := l[0]
	if sc["uuid"] != created.obj(t)["uuid"] || sc["name"] != "DATABASE_URL" || sc["hour"] != 3.0 || sc["timezone"] != "UTC" ||
		len(sc["days"].([]any)) != 7 || sc["deleted_at"] != nil || sc["retain_weeks"] != 4.0 || sc["retain_months"] != 0.0 ||
		!dataTimeRE.MatchString(sc["created_at"].(string)) || !dataTimeRE.MatchString(sc["updated_at"].(string)) {
		t.Errorf("schedule %v", sc)
	}
	if a := call(t, "DELETE", p+"/"+newID(), token, nil); a.status != 404 {
		t.Errorf("DELETE of an unknown schedule: %d", a.status)
	}
	if a := call(t, "DELETE", p+"/"+sc["uuid"].(string), token, nil); a.status != 200 || a.obj(t)["deleted_at"] == nil {
		t.Errorf("DELETE: %d %s", a.status, a.body)
	}
	if l := call(t, "GET", p, token, nil); len(l.list(t)) != 0 {
		t.Errorf("after DELETE: %s", l.body)
	}
	if a := call(t, "GET", data+"/client/v11/databases/"+newID()+"/transfer-schedules", token, nil); a.status != 404 {
		t.Errorf("schedules of an unknown database: %d", a.status)
	}
	if _, err := s.RunSchedule(addon); !errors.Is(err, ErrNoSchedule) {
		t.Errorf("RunSchedule without a schedule: %v", err)
	}
}

// Scheduled backups are a… transfers with their own num_keep; manual captures evict only manual
// backups, and SetRetention changes the limit.
func TestScheduledBackupsAndManualEviction(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_, dsn := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 10 * time.Millisecond})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:mini", dsn)
	_, data := Serve(t, s)
	call(t, "POST", data+"/client/v11/databases/"+addon+"/transfer-schedules", token,
		map[string]any{"hour": "02", "timezone": "UTC", "schedule_name": "DATABASE_URL"})
	sched := call(t, "GET", data+"/client/v11/databases/"+addon+"/transfer-schedules", token, nil).list(t)[0]

	for i := 0; i < 2; i++ {
		waitFinished(t, data, "shop", capture(t, data, addon)["num"])
	}
	for i := 0; i < 3; i++ {
		num, err := s.RunSchedule(addon)
		if err != nil {
			t.Fatal(err)
		}
		done, _ := waitFinished(t, data, "shop", float64(num))
		sc, _ := done["schedule"].(map[string]any)
		if done["to_name"] != "SCHEDULED BACKUP" || sc["uuid"] != sched["uuid"] || done["num_keep"] != 5.0 || done["succeeded"] != true {
			t.Fatalf("scheduled backup %v", done)
		}
	}
	listed := func() map[float64]bool {
		m := map[float64]bool{}
		for _, tr := range call(t, "GET", data+"/client/v11/apps/shop/transfers", token, nil).list(t) {
			m[tr["num"].(float64)] = true
			if _, has := tr["schedule"]; has != (tr["to_name"] == "SCHEDULED BACKUP") {
				t.Errorf("transfer %v: schedule object and to_name disagree", tr)
			}
		}
		return m
	}
	if l := listed(); len(l) != 5 {
		t.Fatalf("after 2 manual and 3 scheduled backups on a plan keeping 2 manual, 5 scheduled: %v", l)
	}
	waitFinished(t, data, "shop", capture(t, data, addon)["num"]) // b006: evicts b001 only
	if l := listed(); l[1] || !l[2] || !l[3] || !l[4] || !l[5] || !l[6] {
		t.Fatalf("after a third manual backup: %v, want b001 evicted and nothing else", l)
	}
	s.SetRetention(addon, 1, 0)
	started := capture(t, data, addon) // b007: keeps only itself of the manual ones
	if started["num_keep"] != 1.0 {
		t.Errorf("num_keep after SetRetention: %v", started["num_keep"])
	}
	waitFinished(t, data, "shop", started["num"])
	if l := listed(); l[2] || l[6] || !l[7] || !l[3] || !l[4] || !l[5] {
		t.Fatalf("after SetRetention(1): %v", l)
	}
}

// Every /client/v11/apps/{app} path takes the app's id as well as its name.
func TestTransfersByAppID(t *testing.T) {
	s := New(Options{Token: token})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://127.0.0.1:1/x")
	num := s.AddBackup("shop", addon, dumpFile(t, fakeDump(1000)))
	platform, data := Serve(t, s)
	id := call(t, "GET", platform+"/apps/shop", token, nil).obj(t)["id"].(string)

	if l := call(t, "GET", data+"/client/v11/apps/"+id+"/transfers", token, nil); l.status != 200 || len(l.list(t)) != 1 {
		t.Fatalf("list by app id: %d %s", l.status, l.body)
	}
	if g := call(t, "GET", transferPath(data, id, float64(num)), token, nil); g.status != 200 || g.obj(t)["num"] != float64(num) {
		t.Fatalf("transfer by app id: %d %s", g.status, g.body)
	}
	if u, _ := publicURL(t, data, id, num); !strings.Contains(u, "X-Amz-Signature=") {
		t.Fatalf("public-url by app id: %s", u)
	}
	if d := call(t, "DELETE", transferPath(data, id, float64(num)), token, nil); d.status != 200 {
		t.Fatalf("delete by app id: %d %s", d.status, d.body)
	}
	if l := call(t, "GET", data+"/client/v11/apps/"+newID()+"/transfers", token, nil); l.status != 404 {
		t.Fatalf("list of an unknown app id: %d", l.status)
	}
}

// A restore of a backup's own to_url reads that backup; one of a signed https URL downloads it
// (trusting the simulator's CA); one of a deleted backup fails; plain http elsewhere is refused.
func TestRestores(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, dsn := shopDB(t, pg)
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 10 * time.Millisecond})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", dsn)
	origin, _ := ServeTLS(t, s)
	ca := caClient(t, s)

	backup := tlsCall(t, ca, "POST", origin+"/client/v11/databases/"+addon+"/backups", nil)
	if backup.status != 201 {
		t.Fatalf("capture: %d %s", backup.status, backup.body)
	}
	b := backup.obj(t)
	waitBackup(t, s, "shop", int(b["num"].(float64)))
	count := func() string {
		n, err := pg.Query(db, "SELECT count(*) FROM orders")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	restore := func(url string) map[string]any {
		t.Helper()
		a := tlsCall(t, ca, "POST", origin+"/client/v11/databases/"+addon+"/restores", map[string]any{"backup_url": url})
		if a.status != 201 {
			t.Fatalf("restore: %d %s", a.status, a.body)
		}
		m := a.obj(t)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			g := tlsCall(t, ca, "GET", origin+"/client/v11/apps/shop/transfers/"+m["uuid"].(string)+"?verbose=true", nil).obj(t)
			if g["finished_at"] != nil {
				return g
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the restore did not finish within a minute")
		return nil
	}

	pg.Exec(t, db, "DELETE FROM orders")
	if r := restore(b["to_url"].(string)); r["succeeded"] != true || r["from_type"] != "htcat" || r["to_type"] != "pg_restore" || count() != "2000" {
		t.Fatalf("restore of the backup's to_url: %v, %s rows", r, count())
	}
	pg.Exec(t, db, "DELETE FROM orders")
	signed := tlsCall(t, ca, "POST", origin+"/client/v11/apps/shop/transfers/1/actions/public-url", nil).obj(t)["url"].(string)
	if !strings.HasPrefix(signed, origin+"/") {
		t.Fatalf("signed URL %s is not on the HTTPS origin", signed)
	}
	if r := restore(signed); r["succeeded"] != true || count() != "2000" {
		t.Fatalf("restore of a signed https URL: %v, %s rows", r, count())
	}
	tlsCall(t, ca, "DELETE", origin+"/client/v11/apps/shop/transfers/1", nil)
	if r := restore(b["to_url"].(string)); r["succeeded"] != false {
		t.Fatalf("restore of a deleted backup's to_url: %v", r)
	}
	if a := tlsCall(t, ca, "POST", origin+"/client/v11/databases/"+addon+"/restores", map[string]any{"backup_url": "http://example.com/x.dump"}); a.status != 422 {
		t.Fatalf("restore of plain http: %d %s", a.status, a.body)
	}
}

// The HTTPS origin answers all three APIs, and only to clients that trust its CA.
func TestServeTLSOrigin(t *testing.T) {
	s := New(Options{Token: token})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://127.0.0.1:1/x")
	s.AddBackup("shop", addon, dumpFile(t, fakeDump(100)))
	origin, _ := ServeTLS(t, s)
	ca := caClient(t, s)
	if !strings.HasPrefix(origin, "https://127.0.0.1:") {
		t.Fatalf("origin %s", origin)
	}
	if _, err := http.Get(origin + "/account"); err == nil {
		t.Fatal("a client that does not trust the CA got an answer")
	}
	if a := tlsCall(t, ca, "GET", origin+"/account", nil); a.status != 200 {
		t.Fatalf("platform: %d", a.status)
	}
	if a := tlsCall(t, ca, "GET", origin+"/client/v11/databases/"+addon, nil); a.status != 200 {
		t.Fatalf("data: %d", a.status)
	}
	u := tlsCall(t, ca, "POST", origin+"/client/v11/apps/shop/transfers/1/actions/public-url", nil).obj(t)["url"].(string)
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Range", "bytes=0-4")
	resp, err := ca.Do(req)
	if err != nil || resp.StatusCode != 206 {
		t.Fatalf("storage: %v %v", resp, err)
	}
	resp.Body.Close()
	for path, want := range map[string]string{"/client/v11/apps/x/transfers": "data", "/xfrtu/a/b.dump": "storage", "/apps/x": "platform", "/": "platform"} {
		if got := Route(path); got != want {
			t.Errorf("Route(%s) = %s, want %s", path, got, want)
		}
	}
}

// caClient is the client ServeTLS gave the simulator: it trusts the simulator's CA.
func caClient(t *testing.T, s *Sim) *http.Client {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch
}

// tlsCall is call through client c, with the valid key.
func tlsCall(t *testing.T, c *http.Client, method, url string, body any) answer {
	t.Helper()
	return callWith(t, c, method, url, token, body)
}
