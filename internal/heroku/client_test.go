package heroku

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const key = "hrku-unit-5e0c5f3c-1234"

// fake is a scripted Heroku: handlers by "METHOD path"; unknown routes fail the test.
type fake struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string]func(w http.ResponseWriter, r *http.Request)
	calls  map[string]int
}

func newFake(t *testing.T) (*fake, *Client) {
	f := &fake{t: t, routes: map[string]func(http.ResponseWriter, *http.Request){}, calls: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := New(Options{APIKey: key, PlatformURL: srv.URL, DataURL: srv.URL, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond, RetryBudget: 5 * time.Second})
	return f, c
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+key {
		f.t.Errorf("%s %s without the API key", r.Method, r.URL.Path)
	}
	if r.Header.Get("Request-Id") == "" || !strings.HasPrefix(r.Header.Get("Accept"), "application/vnd.heroku+json; version=3") {
		f.t.Errorf("%s %s lacks Request-Id or Accept: %v", r.Method, r.URL.Path, r.Header)
	}
	k := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.calls[k]++
	h, ok := f.routes[k]
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("unexpected request %s", k)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h(w, r)
}

func (f *fake) on(route string, h func(w http.ResponseWriter, r *http.Request)) { f.routes[route] = h }

func (f *fake) json(route string, status int, v any) {
	f.on(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	})
}

func (f *fake) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[route]
}

func att(app, name, addonID, addonName, billing, plan string, ns *string) map[string]any {
	return map[string]any{"id": "att-" + name, "name": name, "namespace": ns, "config_vars": []string{name + "_URL"},
		"app":   map[string]any{"id": "app-" + app, "name": app},
		"addon": map[string]any{"id": addonID, "name": addonName, "app": map[string]any{"name": billing}, "plan": map[string]any{"name": plan}}}
}

func TestResolveFiltersAndBillingApp(t *testing.T) {
	f, c := newFake(t)
	ns := "credential:reader"
	f.on("POST /actions/addon-attachments/resolve", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/vnd.heroku+json; version=3.sdk" || r.Header.Get("Accept-Inclusion") != "addon:plan,config_vars" {
			t.Errorf("resolve headers: %v", r.Header)
		}
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		if body["addon_attachment"] != "SHARED_DB" || body["app"] != "web" {
			t.Errorf("body %v", body)
		}
		json.NewEncoder(w).Encode([]any{
			att("web", "SHARED_DB", "r1", "redis-x-1", "core", "heroku-redis:mini", nil),
			att("web", "SHARED_DB", "a1", "postgresql-x-1", "core", "heroku-postgresql:standard-0", &ns),
			att("web", "SHARED_DB", "a1", "postgresql-x-1", "core", "heroku-postgresql:standard-0", nil),
		})
	})
	f.json("GET /addons/a1/addon-attachments", 200, []any{
		att("core", "DATABASE", "a1", "postgresql-x-1", "core", "", nil),
		att("web", "SHARED_DB", "a1", "postgresql-x-1", "core", "", nil),
	})
	db, err := c.Resolve(context.Background(), "web", "SHARED_DB")
	if err != nil {
		t.Fatal(err)
	}
	if db.AddonID != "a1" || db.BillingApp != "core" || db.Attachment != "SHARED_DB" || db.Plan != "heroku-postgresql:standard-0" ||
		len(db.SourceNames) != 1 || db.SourceNames[0] != "DATABASE" {
		t.Errorf("database %+v", db)
	}
}

func TestResolveAmbiguousAndFallback(t *testing.T) {
	f, c := newFake(t)
	f.json("POST /actions/addon-attachments/resolve", 200, []any{
		att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", "heroku-postgresql:essential-0", nil),
		att("shop", "HEROKU_POSTGRESQL_BLUE", "a2", "postgresql-y-2", "shop", "heroku-postgresql:essential-0", nil),
	})
	_, err := c.Resolve(context.Background(), "shop", "postgresql")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), "postgresql-y-2") {
		t.Fatalf("err = %v", err)
	}

	f.json("POST /actions/addon-attachments/resolve", 404, map[string]string{"id": "not_found", "message": "Couldn't find that add on attachment."})
	f.json("GET /apps/shop/addon-attachments", 200, []any{
		att("shop", "DATABASE", "a1", "postgresql-x-1", "shop", "heroku-postgresql:essential-0", nil),
		att("shop", "REDIS", "r1", "redis-x-1", "shop", "heroku-redis:mini", nil),
	})
	f.json("GET /apps/shop/config-vars", 200, map[string]string{"DATABASE_URL": "postgres://u:p@h/d", "REDIS_URL": "redis://x"})
	f.json("GET /addons/a1/addon-attachments", 200, []any{att("shop", "DATABASE", "a1", "postgresql-x-1", "shop", "", nil)})
	db, err := c.Resolve(context.Background(), "shop", "database")
	if err != nil || db.AddonID != "a1" {
		t.Fatalf("fallback: %+v %v", db, err)
	}
	_, err = c.Resolve(context.Background(), "shop", "HEROKU_POSTGRESQL_NOPE")
	if err == nil || !strings.Contains(err.Error(), "Unknown database: HEROKU_POSTGRESQL_NOPE. Valid options are: DATABASE_URL") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "postgres://") {
		t.Error("a config var value leaked into the error")
	}
	f.json("GET /apps/shop/addon-attachments", 200, []any{})
	_, err = c.Resolve(context.Background(), "shop", "DATABASE_URL")
	if err == nil || !strings.Contains(err.Error(), "shop has no databases") {
		t.Fatalf("err = %v", err)
	}
}

func transfer(num int, from string, created time.Time, ok *bool, finished bool) map[string]any {
	tr := map[string]any{"uuid": fmt.Sprintf("u-%d", num), "num": num, "from_name": from, "from_type": "pg_dump", "to_name": "BACKUP",
		"to_type": "gof3r", "from_url": "postgres://user:pw@host/db", "succeeded": ok, "processed_bytes": 100,
		"created_at": created.UTC().Format(DataTimeLayout), "finished_at": nil, "canceled_at": nil}
	if finished {
		tr["finished_at"] = created.Add(time.Minute).UTC().Format(DataTimeLayout)
	}
	return tr
}

var yes, no = func() *bool { b := true; return &b }(), func() *bool { b := false; return &b }()

func db() Database {
	return Database{App: "shop", Attachment: "DATABASE", AddonID: "a1", AddonName: "postgresql-x-1", BillingApp: "shop", SourceNames: []string{"DATABASE"}}
}

func TestCaptureDoesNotPostTwice(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	f.json("GET /client/v11/databases/a1", 200, map[string]any{"info": []any{}})
	lists := 0
	f.on("GET /client/v11/apps/shop/transfers", func(w http.ResponseWriter, r *http.Request) {
		lists++
		ts := []any{transfer(7, "DATABASE", now.Add(-time.Hour), yes, true)}
		if lists > 1 { // the failed POST did start backup 8
			ts = append(ts, transfer(8, "DATABASE", now, nil, false))
		}
		json.NewEncoder(w).Encode(ts)
	})
	f.json("POST /client/v11/databases/a1/backups", 503, map[string]string{"id": "unavailable", "message": "try later"})
	tr, err := c.Capture(context.Background(), db())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Num != 8 || f.count("POST /client/v11/databases/a1/backups") != 1 {
		t.Errorf("adopted %d after %d POSTs, want b008 after 1", tr.Num, f.count("POST /client/v11/databases/a1/backups"))
	}
}

func TestCaptureNotProvisioned(t *testing.T) {
	f, c := newFake(t)
	f.on("GET /client/v11/databases/a1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		io.WriteString(w, "<h1>Not Found</h1>")
	})
	_, err := c.Capture(context.Background(), db())
	if err == nil || !strings.Contains(err.Error(), "not provisioned") || !strings.Contains(err.Error(), "404 Not Found") ||
		!strings.Contains(err.Error(), "heroku: capture app=shop database=DATABASE") {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitBacksOffAndReportsFailure(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	polls := 0
	f.on("GET /client/v11/apps/shop/transfers/9", func(w http.ResponseWriter, r *http.Request) {
		polls++
		tr := transfer(9, "DATABASE", now, nil, false)
		if polls >= 3 {
			tr = transfer(9, "DATABASE", now, no, true)
		}
		if r.URL.Query().Get("verbose") == "true" {
			tr["logs"] = []any{map[string]string{"created_at": now.UTC().Format(DataTimeLayout), "level": "error", "message": "pg_dump: error: connection lost"}}
		}
		json.NewEncoder(w).Encode(tr)
	})
	var seen int
	_, err := c.Wait(context.Background(), db(), Transfer{Num: 9}, time.Minute, func(Transfer) { seen++ })
	var terr *TransferError
	if !errors.As(err, &terr) || !strings.Contains(err.Error(), "pg_dump: error: connection lost") || !strings.Contains(err.Error(), "backup b009 failed") {
		t.Fatalf("err = %v", err)
	}
	if seen != 3 {
		t.Errorf("progress called %d times, want 3", seen)
	}

	// A capture that never finishes fails at the deadline.
	f.json("GET /client/v11/apps/shop/transfers/10", 200, transfer(10, "DATABASE", now, nil, false))
	_, err = c.Wait(context.Background(), db(), Transfer{Num: 10}, 50*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "not finished after 50ms") {
		t.Fatalf("err = %v", err)
	}
}

func TestLatestPicksThisDatabase(t *testing.T) {
	f, c := newFake(t)
	now := time.Now()
	f.json("GET /client/v11/apps/shop/transfers", 200, []any{
		transfer(3, "DATABASE", now.Add(-3*time.Hour), yes, true),
		transfer(5, "HEROKU_POSTGRESQL_BLUE", now.Add(-time.Hour), yes, true), // another database, newer
		transfer(4, "DATABASE", now.Add(-2*time.Hour), no, true),              // failed
		transfer(6, "DATABASE", now.Add(-time.Minute), nil, false),            // running
	})
	tr, err := c.Latest(context.Background(), db())
	if err != nil || tr.Num != 3 {
		t.Fatalf("latest = %d, %v; want b003", tr.Num, err)
	}
	f.json("GET /client/v11/apps/shop/transfers", 200, []any{})
	_, err = c.Latest(context.Background(), db())
	if !errors.Is(err, ErrNoBackup) {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorsExplainAndNeverLeak(t *testing.T) {
	f, c := newFake(t)
	f.json("GET /account", 401, map[string]string{"id": "unauthorized", "message": "Invalid credentials provided."})
	_, err := c.Account(context.Background())
	if err == nil || !strings.Contains(err.Error(), "authorizations:create") || IsPermanent(err) == false {
		t.Fatalf("401: %v", err)
	}
	f.json("GET /account", 403, map[string]string{"id": "two_factor", "message": "2FA"})
	if _, err = c.Account(context.Background()); err == nil || !strings.Contains(err.Error(), "second factor") {
		t.Fatalf("403: %v", err)
	}
	f.json("POST /client/v11/apps/shop/transfers/3/actions/public-url", 200, map[string]string{
		"url": "https://bucket.s3.amazonaws.com/x.dump?X-Amz-Signature=abc", "expires_at": "2026-11-24 10:00:00 +0000"})
	u, err := c.PublicURL(context.Background(), db(), Transfer{Num: 3})
	if err != nil || !strings.HasPrefix(u.URL.Reveal(), "https://bucket") || u.ExpiresAt.Hour() != 10 {
		t.Fatalf("public url: %+v %v", u, err)
	}
	if s := fmt.Sprintf("%v %+v %s", u, u, u.URL); strings.Contains(s, "Signature") {
		t.Errorf("a signed URL prints: %s", s)
	}
	for _, e := range []error{err} {
		if e != nil && strings.Contains(e.Error(), key) {
			t.Error("the key leaked")
		}
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	f, c := newFake(t)
	n := 0
	var first time.Time
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		n++
		switch n {
		case 1:
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			io.WriteString(w, `{"id":"rate_limit","message":"Your account reached the API rate limit"}`)
		case 2:
			if time.Since(first) < 900*time.Millisecond {
				t.Errorf("retried after %s, before Retry-After", time.Since(first))
			}
			w.WriteHeader(503)
		default:
			io.WriteString(w, `{"email":"ops@example.com"}`)
		}
	})
	email, err := c.Account(context.Background())
	if err != nil || email != "ops@example.com" || n != 3 {
		t.Fatalf("email %q err %v after %d calls", email, err, n)
	}
	// A POST that is not idempotent is not retried by the transport.
	f.json("POST /client/v11/apps/shop/transfers/u-1/actions/cancel", 503, map[string]string{"id": "unavailable"})
	if err := c.Cancel(context.Background(), db(), Transfer{UUID: "u-1", Num: 1}); err == nil || f.count("POST /client/v11/apps/shop/transfers/u-1/actions/cancel") != 1 {
		t.Errorf("cancel: %v after %d calls", err, f.count("POST /client/v11/apps/shop/transfers/u-1/actions/cancel"))
	}
}

func TestRetryAfterParsing(t *testing.T) {
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"7"}}}
	if d, ok := retryAfter(resp, nil, 0); !ok || d != 7*time.Second {
		t.Errorf("seconds: %s %v", d, ok)
	}
	resp.Header.Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
	if d, ok := retryAfter(resp, nil, 0); !ok || d < time.Second || d > 3*time.Second {
		t.Errorf("date: %s %v", d, ok)
	}
	if _, ok := retryAfter(&http.Response{StatusCode: 404}, nil, 0); ok {
		t.Error("404 retried")
	}
}

func TestValidateRefusesPlainHTTP(t *testing.T) {
	if err := (Options{PlatformURL: "http://api.heroku.com"}).Validate(); err == nil {
		t.Error("plain http accepted")
	}
	if err := (Options{PlatformURL: "http://127.0.0.1:5000", DataURL: "https://api.data.heroku.com"}).Validate(); err != nil {
		t.Error(err)
	}
}
