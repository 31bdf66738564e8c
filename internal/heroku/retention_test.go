package heroku

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scheduled is a scheduled backup as the Data API writes it (heroku-api.md §9).
func scheduled(num int, from string, created time.Time) map[string]any {
	tr := transfer(num, from, created, yes, true)
	tr["to_name"] = "SCHEDULED BACKUP"
	tr["schedule"] = map[string]any{"uuid": "5ched-0001"}
	tr["num_keep"] = 5
	return tr
}

func deleted(tr map[string]any) map[string]any {
	tr["deleted_at"] = time.Now().UTC().Format(DataTimeLayout)
	return tr
}

// TestCaptureTellsWhatHerokuWillDelete: on a database that already has num_keep manual
// backups, Capture reports that Heroku deletes the oldest for the new one, naming it; scheduled
// backups, other databases' backups and deleted ones do not count.
func TestCaptureTellsWhatHerokuWillDelete(t *testing.T) {
	f, c, list := captureFake(t)
	now := time.Now()
	list(transfer(3, "DATABASE", now.Add(-48*time.Hour), yes, true),
		transfer(5, "DATABASE", now.Add(-24*time.Hour), no, true),
		transfer(4, "HEROKU_POSTGRESQL_BLUE", now.Add(-30*time.Hour), yes, true),
		scheduled(2, "DATABASE", now.Add(-72*time.Hour)),
		deleted(transfer(1, "DATABASE", now.Add(-96*time.Hour), yes, true)))
	f.json(backups, http.StatusCreated, transfer(6, "DATABASE", now, nil, false))
	db := shopDB()
	db.Plan = "heroku-postgresql:essential-0"
	tr, err := c.Capture(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Retention
	if r == nil || !r.Full() || r.NumKeep != 2 || r.Documented || len(r.Manual) != 2 || r.Manual[0].Name() != "b003" || r.Manual[1].Name() != "b005" {
		t.Fatalf("retention = %+v", r)
	}
	w := r.Warning(db)
	for _, s := range []string{"each capture makes Heroku delete the oldest manual backup of DATABASE (now b003)",
		"heroku-postgresql:essential-0 keeps num_keep=2 manual backups and has 2 now", "BACKUP_MODE=latest",
		"heroku pg:backups:schedule DATABASE --at '02:00 UTC' -a shop"} {
		if !strings.Contains(w, s) {
			t.Errorf("warning lacks %q:\n%s", s, w)
		}
	}
}

func TestRetentionBeforeTheLimit(t *testing.T) {
	f, c, list := captureFake(t)
	now := time.Now()
	list(transfer(3, "DATABASE", now.Add(-time.Hour), yes, true))
	f.json(backups, http.StatusCreated, transfer(4, "DATABASE", now, nil, false))
	tr, err := c.Capture(context.Background(), shopDB())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Retention == nil || tr.Retention.Full() {
		t.Fatalf("one manual backup of two kept counts as full: %+v", tr.Retention)
	}
	if w := tr.Retention.Warning(shopDB()); !strings.Contains(w, "heroku-postgresql:standard-0 keeps num_keep=2 manual backups and has 1 now: after 1 more capture(s), each capture makes Heroku delete the oldest manual backup") {
		t.Errorf("warning: %s", w)
	}

	// No manual backup yet: the plan's documented limit, said to be one.
	f.on("GET /client/v11/apps/shop/transfers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []any{scheduled(1, "DATABASE", now)})
	})
	r, err := c.Retention(context.Background(), shopDB())
	if err != nil || r.NumKeep != 25 || !r.Documented || len(r.Manual) != 0 {
		t.Fatalf("retention %+v err %v", r, err)
	}
	if w := r.Warning(shopDB()); !strings.Contains(w, "keeps 25 (the plan's documented limit) manual backups and has 0 now") {
		t.Errorf("warning: %s", w)
	}
	db := shopDB()
	db.Plan = "heroku-postgresql:some-new-tier"
	if r, _ := c.Retention(context.Background(), db); r.NumKeep != 0 || !strings.Contains(r.Warning(db), "how many on heroku-postgresql:some-new-tier is not known yet") {
		t.Errorf("unknown plan: %+v %s", r, r.Warning(db))
	}
}

// TestSchedules reads the list in the shape heroku-api.md §9 gives, hour as a number or a
// string, and leaves deleted schedules out.
func TestSchedules(t *testing.T) {
	f, c := newFake(t)
	route := "GET /client/v11/databases/a1/transfer-schedules"
	f.on(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"uuid":"5ched-0001","name":"DATABASE_URL","hour":2,"days":["Sunday","Monday","Tuesday","Wednesday","Thursday","Friday","Saturday"],
			"timezone":"America/Los_Angeles","created_at":"2026-11-01 10:00:00 +0000","updated_at":"2026-11-01 10:00:00 +0000","deleted_at":null,"retain_weeks":4,"retain_months":0},
			{"uuid":"5ched-0000","name":"HEROKU_POSTGRESQL_PINK_URL","hour":"05","days":["Monday"],"timezone":"UTC",
			"created_at":"2026-10-01 10:00:00 +0000","updated_at":"2026-10-02 10:00:00 +0000","deleted_at":"2026-10-02 10:00:00 +0000","retain_weeks":null,"retain_months":null},
			{"uuid":"5ched-0002","name":"DATABASE_URL","hour":"05","days":["Monday"],"timezone":"UTC",
			"created_at":"2026-10-01 10:00:00 +0000","updated_at":"2026-10-02 10:00:00 +0000","deleted_at":null,"retain_weeks":null,"retain_months":null}]`))
	})
	ss, err := c.Schedules(context.Background(), shopDB())
	if err != nil || len(ss) != 2 {
		t.Fatalf("schedules %+v err %v", ss, err)
	}
	if got := ss[0].String(); got != "DATABASE_URL daily at 02:00 America/Los_Angeles" {
		t.Errorf("schedule 0: %s", got)
	}
	if got := ss[1].String(); got != "DATABASE_URL on Monday at 05:00 UTC" || ss[1].UUID != "5ched-0002" {
		t.Errorf("schedule 1: %s", got)
	}

	f.json(route, 200, []any{})
	if ss, err := c.Schedules(context.Background(), shopDB()); err != nil || len(ss) != 0 {
		t.Errorf("none: %+v %v", ss, err)
	}
	f.json(route, 404, map[string]string{"id": "not_found", "message": "Not found."})
	if _, err := c.Schedules(context.Background(), shopDB()); !IsNotFound(err) || !strings.Contains(err.Error(), "heroku: backup schedules app=shop database=DATABASE: GET /client/v11/databases/a1/transfer-schedules: 404") {
		t.Errorf("404: %v", err)
	}
}
