package heroku

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// captureFake serves the database info and a transfer list that the test controls.
func captureFake(t *testing.T) (f *fake, c *Client, list func(...map[string]any)) {
	f, c = newFake(t)
	f.json("GET /client/v11/databases/a1", 200, map[string]any{"addon_id": "a1", "info": []any{map[string]any{"name": "Plan", "values": []string{"Standard 0"}}}})
	var mu sync.Mutex
	var ts []map[string]any
	f.on("GET /client/v11/apps/shop/transfers", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, 200, append([]map[string]any{}, ts...))
	})
	return f, c, func(more ...map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		ts = append(ts, more...)
	}
}

const backups = "POST /client/v11/databases/a1/backups"

func TestCaptureCreated(t *testing.T) {
	f, c, list := captureFake(t)
	now := time.Now()
	list(transfer(7, "DATABASE", now.Add(-time.Hour), yes, true))
	f.on(backups, func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 0 {
			b, _ := io.ReadAll(r.Body)
			t.Errorf("capture sent a body: %q", b)
		}
		writeJSON(w, http.StatusCreated, transfer(8, "DATABASE", now, nil, false))
	})
	tr, err := c.Capture(context.Background(), shopDB())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Num != 8 || tr.Name() != "b008" || tr.Finished() || tr.FromURL.Reveal() != dbURL || f.count(backups) != 1 {
		t.Errorf("capture = %+v after %d POSTs", tr, f.count(backups))
	}
}

// TestCaptureAdoptsTheBackupAFailedPostStarted: Heroku started backup 8, then the answer was
// lost (a 503 from the router, or a dropped connection). A second POST would start a second
// backup; the client must find b008 instead.
func TestCaptureAdoptsTheBackupAFailedPostStarted(t *testing.T) {
	for _, how := range []string{"503", "dropped connection"} {
		t.Run(how, func(t *testing.T) {
			f, c, list := captureFake(t)
			now := time.Now()
			list(transfer(7, "DATABASE", now.Add(-time.Hour), yes, true), transfer(6, "HEROKU_POSTGRESQL_BLUE", now.Add(-2*time.Hour), yes, true))
			f.on(backups, func(w http.ResponseWriter, r *http.Request) {
				// Another database's backup starts too: it must not be taken for ours.
				list(transfer(8, "HEROKU_POSTGRESQL_BLUE", now, nil, false), transfer(9, "DATABASE", now, nil, false))
				if how == "503" {
					herokuError(w, 503, "unavailable", "The service is temporarily unavailable.")
					return
				}
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			})
			tr, err := c.Capture(context.Background(), shopDB())
			if err != nil {
				t.Fatal(err)
			}
			if tr.Num != 9 || f.count(backups) != 1 {
				t.Errorf("adopted b%03d after %d POSTs; want b009 after 1", tr.Num, f.count(backups))
			}
		})
	}
}

func TestCaptureRetriesWhenTheFailedPostStartedNothing(t *testing.T) {
	f, c, list := captureFake(t)
	now := time.Now()
	list(transfer(7, "DATABASE", now.Add(-time.Hour), yes, true))
	f.on(backups, func(w http.ResponseWriter, r *http.Request) {
		if f.count(backups) == 1 {
			w.Header().Set("Retry-After", "0")
			herokuError(w, 429, "rate_limit", "Your account reached the API rate limit")
			return
		}
		writeJSON(w, 201, transfer(8, "DATABASE", now, nil, false))
	})
	tr, err := c.Capture(context.Background(), shopDB())
	if err != nil || tr.Num != 8 || f.count(backups) != 2 {
		t.Fatalf("capture = b%03d, %v after %d POSTs; want b008 after 2", tr.Num, err, f.count(backups))
	}
}

func TestCaptureRefusedWhileOneRunsWaitsForThatOne(t *testing.T) {
	f, c, list := captureFake(t)
	now := time.Now()
	list(transfer(7, "DATABASE", now.Add(-time.Minute), nil, false), transfer(6, "HEROKU_POSTGRESQL_BLUE", now, nil, false))
	// Unverified what Heroku answers then; a 422 is the likeliest.
	f.json(backups, 422, map[string]string{"id": "invalid_params", "message": "A backup is already in progress."})
	tr, err := c.Capture(context.Background(), shopDB())
	if err != nil || tr.Num != 7 || f.count(backups) != 1 {
		t.Fatalf("capture = b%03d, %v after %d POSTs; want the running b007 after 1", tr.Num, err, f.count(backups))
	}

	// Nothing of this database running: the refusal is the answer.
	f2, c2, list2 := captureFake(t)
	list2(transfer(6, "HEROKU_POSTGRESQL_BLUE", now, nil, false))
	f2.json(backups, 422, map[string]string{"id": "invalid_params", "message": "Backups are disabled for this plan."})
	_, err = c2.Capture(context.Background(), shopDB())
	if err == nil || !strings.Contains(err.Error(), "Backups are disabled for this plan.") || !IsPermanent(err) || f2.count(backups) != 1 {
		t.Fatalf("err = %v after %d POSTs", err, f2.count(backups))
	}
}

func TestCaptureGivesUpWithinItsBudget(t *testing.T) {
	f, _, list := captureFake(t)
	c := f.client(Options{RetryBudget: time.Second}) // two POSTs fit in it on a busy machine
	list()
	f.json(backups, 503, map[string]string{"id": "unavailable", "message": "down"})
	start := time.Now()
	_, err := c.Capture(context.Background(), shopDB())
	if err == nil || !strings.Contains(err.Error(), "heroku: capture app=shop database=DATABASE: POST /client/v11/databases/a1/backups: 503 unavailable: down") {
		t.Fatalf("err = %v", err)
	}
	if n := f.count(backups); n < 2 || time.Since(start) > 5*time.Second {
		t.Errorf("%d POSTs in %s", n, time.Since(start))
	}
}

func TestCaptureNotProvisioned(t *testing.T) {
	f, c := newFake(t)
	f.on("GET /client/v11/databases/a1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		io.WriteString(w, "<h1>Not Found</h1>")
	})
	_, err := c.Capture(context.Background(), shopDB())
	if err == nil || !strings.Contains(err.Error(), "heroku: capture app=shop database=DATABASE: ") ||
		!strings.Contains(err.Error(), "not provisioned yet") || !strings.Contains(err.Error(), "404 not found") ||
		strings.Contains(err.Error(), "<h1>") || !IsNotFound(err) {
		t.Fatalf("err = %v", err)
	}
	if f.count(backups) != 0 {
		t.Error("captured a database the Data API does not know")
	}
}

// waitDB is attached to web and billed to core: transfers live under core only.
func waitDB() Database {
	return Database{App: "web", Attachment: "SHARED_DB", AddonID: "a1", AddonName: "postgresql-x-1", BillingApp: "core", SourceNames: []string{"DATABASE"}}
}

func TestWaitBacksOffUnderTheBillingApp(t *testing.T) {
	f, _ := newFake(t)
	c := f.client(Options{RetryBudget: time.Second, PollInterval: 10 * time.Millisecond, MaxPollInterval: 40 * time.Millisecond})
	now := time.Now()
	var mu sync.Mutex
	var polls []time.Time
	f.on("GET /client/v11/apps/core/transfers/9", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		polls = append(polls, time.Now())
		tr := transfer(9, "DATABASE", now, nil, false)
		if len(polls) >= 3 {
			tr["started_at"], tr["source_bytes"] = now.Format(DataTimeLayout), 8150151
		}
		if len(polls) >= 7 {
			tr = transfer(9, "DATABASE", now, yes, true)
		}
		writeJSON(w, 200, tr)
	})
	start := time.Now()
	var seen []Transfer
	tr, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 9, FromType: "pg_dump", ToType: "gof3r"}, time.Minute, func(p Transfer, _ error) { seen = append(seen, p) })
	if err != nil || !tr.OK() || tr.ProcessedBytes != 1234 {
		t.Fatalf("wait = %+v, %v", tr, err)
	}
	if len(seen) != 7 || seen[2].SourceBytes == nil || *seen[2].SourceBytes != 8150151 {
		t.Errorf("progress saw %d polls (want 7), the third with source_bytes %v", len(seen), seen[min(2, len(seen)-1)].SourceBytes)
	}
	// Waits: 10, 15, 22.5, 33.75, then 40 ms (the cap).
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{10, 15, 22, 33, 40, 40, 40}
	prev := start
	for i, at := range polls {
		if gap := at.Sub(prev); gap < want[i]*time.Millisecond {
			t.Errorf("poll %d came %s after the previous one, want at least %d ms", i+1, gap, want[i])
		}
		prev = at
	}
	if d := nextPoll(3*time.Second, 30*time.Second); d != 4500*time.Millisecond {
		t.Errorf("after 3 s the next wait is %s, want 4.5 s", d)
	}
	if d := nextPoll(25*time.Second, 30*time.Second); d != 30*time.Second {
		t.Errorf("the wait grows past the cap: %s", d)
	}
}

func TestWaitFailureCarriesTheLastLogLines(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	f.on("GET /client/v11/apps/core/transfers/9", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("verbose") != "true" {
			if f.count("GET /client/v11/apps/core/transfers/9") < 2 {
				writeJSON(w, 200, transfer(9, "DATABASE", now, nil, false))
				return
			}
		}
		tr := transfer(9, "DATABASE", now, no, true)
		if r.URL.Query().Get("verbose") == "true" {
			var logs []any
			for i := 1; i <= 12; i++ {
				logs = append(logs, map[string]string{"created_at": now.UTC().Format(DataTimeLayout), "level": "info", "message": fmt.Sprintf("line %02d", i)})
			}
			logs = append(logs[:11], map[string]string{"created_at": now.UTC().Format(DataTimeLayout), "level": "error",
				"message": "pg_dump: error: connection to " + dbURL + " lost"})
			tr["logs"] = logs
		}
		writeJSON(w, 200, tr)
	})
	tr, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 9}, time.Minute, nil)
	var terr *TransferError
	if !errors.As(err, &terr) {
		t.Fatalf("err = %v, want a *TransferError", err)
	}
	if tr.Num != 9 || !tr.Finished() || terr.Transfer.Num != 9 || len(terr.Logs) != 10 || terr.Logs[0] != "line 03" {
		t.Errorf("transfer %d finished %v; logs %q", tr.Num, tr.Finished(), terr.Logs)
	}
	for _, s := range []string{"heroku: backup app=web database=SHARED_DB: backup b009 failed on Heroku", "line 11 | pg_dump: error: connection to postgres://u4ser:[REDACTED]@ec2"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), "line 02") || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("error shows too much: %v", err)
	}
}

func TestWaitCancelledIsFailed(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	tr := transfer(9, "DATABASE", now, no, false)
	tr["canceled_at"] = now.Format(DataTimeLayout)
	f.json("GET /client/v11/apps/core/transfers/9", 200, tr)
	_, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 9}, time.Minute, nil)
	var terr *TransferError
	if !errors.As(err, &terr) || !strings.Contains(err.Error(), "backup b009 was cancelled on Heroku") {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	f, c := newFake(t)
	f.json("GET /client/v11/apps/core/transfers/10", 200, transfer(10, "DATABASE", time.Now(), nil, false))
	tr, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 10}, 50*time.Millisecond, nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "heroku: wait for backup b010 app=web database=SHARED_DB: the backup did not finish in 50ms") {
		t.Fatalf("err = %v", err)
	}
	if tr.Num != 10 || tr.Finished() {
		t.Errorf("transfer %+v", tr)
	}
	// The caller's own cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Wait(ctx, waitDB(), Transfer{Num: 10}, time.Minute, nil); errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestWaitRidesOutAnOutageLongerThanTheRetryBudget(t *testing.T) {
	f, _ := newFake(t)
	c := f.client(Options{RetryBudget: 20 * time.Millisecond})
	var down atomic.Int32
	down.Store(15)
	f.on("GET /client/v11/apps/core/transfers/9", func(w http.ResponseWriter, r *http.Request) {
		if down.Add(-1) >= 0 {
			herokuError(w, 503, "unavailable", "down")
			return
		}
		writeJSON(w, 200, transfer(9, "DATABASE", time.Now(), yes, true))
	})
	var failed, ok int
	progress := func(tr Transfer, err error) {
		if err != nil {
			failed++
		} else {
			ok++
		}
	}
	if tr, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 9}, time.Minute, progress); err != nil || !tr.OK() {
		t.Fatalf("wait = %+v, %v", tr, err)
	}
	// Each poll that met the outage after its retries was reported as it happened.
	if failed == 0 || ok != 1 {
		t.Errorf("progress saw %d failed and %d good polls, want some failed and one good", failed, ok)
	}

	// A timeout during the outage says what the polls last met.
	down.Store(1 << 30)
	_, err := c.Wait(context.Background(), waitDB(), Transfer{Num: 9}, 100*time.Millisecond, nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "the last poll failed: GET /client/v11/apps/core/transfers/9: 503") {
		t.Fatalf("err = %v", err)
	}
}

func TestLatestPicksThisDatabase(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	deleted := transfer(10, "DATABASE", now.Add(-30*time.Minute), yes, true)
	deleted["deleted_at"] = now.Format(DataTimeLayout)
	restore := transfer(11, "BACKUP", now.Add(-20*time.Minute), yes, true)
	restore["from_type"], restore["to_type"], restore["to_name"] = "htcat", "pg_restore", "DATABASE"
	scheduled := transfer(3, "HEROKU_POSTGRESQL_PINK", now.Add(-2*time.Hour), yes, true)
	scheduled["to_name"], scheduled["schedule"] = "SCHEDULED BACKUP", map[string]string{"uuid": "s1"}
	f.json("GET /client/v11/apps/shop/transfers", 200, []any{
		transfer(2, "DATABASE", now.Add(-3*time.Hour), yes, true),
		scheduled, // this database under its other name, newest of its usable backups
		transfer(5, "HEROKU_POSTGRESQL_BLUE", now.Add(-time.Hour), yes, true), // another database, newer
		transfer(4, "DATABASE", now.Add(-90*time.Minute), no, true),           // failed
		transfer(6, "DATABASE", now.Add(-time.Minute), nil, false),            // running
		deleted, restore,
	})
	tr, err := c.Latest(context.Background(), shopDB())
	if err != nil || tr.Num != 3 || tr.Name() != "a003" {
		t.Fatalf("latest = %s, %v; want a003", tr.Name(), err)
	}

	f.json("GET /client/v11/apps/shop/transfers", 200, []any{transfer(5, "HEROKU_POSTGRESQL_BLUE", now, yes, true)})
	_, err = c.Latest(context.Background(), shopDB())
	if !errors.Is(err, ErrNoBackup) || !strings.Contains(err.Error(), "heroku: latest backup app=shop database=DATABASE: no successful backup of DATABASE (add-on postgresql-x-1") {
		t.Fatalf("err = %v", err)
	}
}

func TestPublicURLIsRetriedAndSecret(t *testing.T) {
	f, c := newFake(t)
	route := "POST /client/v11/apps/core/transfers/3/actions/public-url"
	f.on(route, func(w http.ResponseWriter, r *http.Request) {
		if f.count(route) == 1 {
			herokuError(w, 503, "unavailable", "down")
			return
		}
		writeJSON(w, 200, map[string]string{"url": signedURL, "expires_at": "2026-11-24 10:00:00 +0000"})
	})
	u, err := c.PublicURL(context.Background(), waitDB(), Transfer{Num: 3})
	if err != nil || u.URL.Reveal() != signedURL || !u.ExpiresAt.Equal(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)) || f.count(route) != 2 {
		t.Fatalf("public url: %v after %d calls", err, f.count(route))
	}
	if s := fmt.Sprintf("%v %+v %#v %s", u, u, u, u.URL); strings.Contains(s, "Signature") {
		t.Errorf("a signed URL prints: %s", s)
	}
}

func TestCancelByUUIDAndRestoreNotRetried(t *testing.T) {
	f, c := newFake(t)
	route := "POST /client/v11/apps/core/transfers/0000-9/actions/cancel"
	f.on(route, func(w http.ResponseWriter, r *http.Request) {
		if f.count(route) == 1 {
			herokuError(w, 503, "unavailable", "down")
			return
		}
		writeJSON(w, 200, transfer(9, "DATABASE", time.Now(), no, true))
	})
	if err := c.Cancel(context.Background(), waitDB(), Transfer{UUID: "0000-9", Num: 9}); err != nil || f.count(route) != 2 {
		t.Errorf("cancel: %v after %d calls", err, f.count(route))
	}

	// A restore POST is not idempotent: never sent twice by the transport.
	f.json("POST /client/v11/databases/a1/restores", 503, map[string]string{"id": "unavailable"})
	if _, err := c.Restore(context.Background(), waitDB(), signedURL); err == nil || f.count("POST /client/v11/databases/a1/restores") != 1 {
		t.Errorf("restore: %v after %d calls", err, f.count("POST /client/v11/databases/a1/restores"))
	} else if strings.Contains(err.Error(), "Signature") {
		t.Errorf("restore error shows the URL: %v", err)
	}
}
