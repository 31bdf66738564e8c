package heroku

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

const (
	key       = "hrku-unit-5e0c5f3c-1234-4abc-9def-0123456789ab"
	userAgent = "pgoffsite/test"
	signedURL = "https://xfrtu.s3.amazonaws.com/a1/2026/b.dump?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeefcafe"
	dbURL     = "postgres://u4ser:secretpw@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d9"
)

// fake is a scripted Heroku serving both APIs: handlers by "METHOD path"; a request to any
// other route fails the test, and so does one without the headers every request must carry.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	calls  map[string]int
}

// newFake starts a fake and a client of it with short polls and quick retries.
func newFake(t *testing.T) (*fake, *Client) {
	f := &fake{t: t, routes: map[string]http.HandlerFunc{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f, f.client(Options{RetryBudget: 5 * time.Second})
}

// client returns a client of the fake with o's budget and fast defaults for the rest.
func (f *fake) client(o Options) *Client {
	o.APIKey, o.PlatformURL, o.DataURL, o.UserAgent = key, f.srv.URL, f.srv.URL, userAgent
	if o.PollInterval == 0 {
		o.PollInterval, o.MaxPollInterval = time.Millisecond, 5*time.Millisecond
	}
	c := New(o)
	c.retry.base, c.retry.cap = time.Millisecond, 10*time.Millisecond
	return c
}

// sdkRoutes are the Platform API calls that must ask for version=3.sdk with inclusions.
func sdkRoute(r *http.Request) bool {
	return r.URL.Path == "/actions/addon-attachments/resolve" || strings.HasSuffix(r.URL.Path, "/addon-attachments")
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+key {
		f.t.Errorf("%s %s: Authorization %q, want exactly one Bearer with the key", r.Method, r.URL.Path, got)
	}
	if _, err := uuid.Parse(r.Header.Get("Request-Id")); err != nil {
		f.t.Errorf("%s %s: Request-Id %q is not a UUID", r.Method, r.URL.Path, r.Header.Get("Request-Id"))
	}
	if r.Header.Get("User-Agent") != userAgent {
		f.t.Errorf("%s %s: User-Agent %q", r.Method, r.URL.Path, r.Header.Get("User-Agent"))
	}
	accept := "application/vnd.heroku+json; version=3"
	if sdkRoute(r) {
		accept += ".sdk"
		if r.Header.Get("Accept-Inclusion") != "addon:plan,config_vars" {
			f.t.Errorf("%s %s: Accept-Inclusion %q", r.Method, r.URL.Path, r.Header.Get("Accept-Inclusion"))
		}
	}
	if r.Header.Get("Accept") != accept {
		f.t.Errorf("%s %s: Accept %q, want %q", r.Method, r.URL.Path, r.Header.Get("Accept"), accept)
	}
	k := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.calls[k]++
	h, ok := f.routes[k]
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("unexpected request %s", k)
		http.Error(w, "no such route in the fake", http.StatusTeapot)
		return
	}
	h(w, r)
}

func (f *fake) on(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

// json answers route with status and v as JSON.
func (f *fake) json(route string, status int, v any) {
	f.on(route, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, v) })
}

func (f *fake) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[route]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func herokuError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

// att is an attachment as the resolve action and attachment lists answer with inclusions.
func att(app, name, addonID, addonName, billing, plan string, ns *string) map[string]any {
	return map[string]any{"id": "att-" + app + "-" + name, "name": name, "namespace": ns, "config_vars": []string{name + "_URL"},
		"app":   map[string]any{"id": "app-" + app, "name": app},
		"addon": map[string]any{"id": addonID, "name": addonName, "app": map[string]any{"id": "app-" + billing, "name": billing}, "plan": map[string]any{"name": plan}}}
}

const pgPlan = "heroku-postgresql:standard-0"

// transfer is a backup as the Data API writes it; ok nil with finished means failed.
func transfer(num int, from string, created time.Time, ok *bool, finished bool) map[string]any {
	tr := map[string]any{"uuid": fmt.Sprintf("0000-%d", num), "num": num, "from_name": from, "from_type": "pg_dump",
		"from_url": dbURL, "to_name": "BACKUP", "to_type": "gof3r", "to_url": "https://xfrtu.s3.amazonaws.com/x",
		"options": map[string]any{}, "source_bytes": nil, "processed_bytes": 0, "succeeded": ok, "warnings": 0,
		"created_at": created.UTC().Format(DataTimeLayout), "started_at": nil, "updated_at": nil,
		"finished_at": nil, "canceled_at": nil, "deleted_at": nil, "purged_at": nil, "num_keep": 2}
	if finished {
		tr["finished_at"] = created.Add(time.Minute).UTC().Format(DataTimeLayout)
		tr["processed_bytes"] = 1234
	}
	return tr
}

var yes, no = func() *bool { b := true; return &b }(), func() *bool { b := false; return &b }()

// shopDB is a resolved database billed to the app it is attached to.
func shopDB() Database {
	return Database{App: "shop", Attachment: "DATABASE", AddonID: "a1", AddonName: "postgresql-x-1",
		BillingApp: "shop", Plan: pgPlan, SourceNames: []string{"DATABASE", "HEROKU_POSTGRESQL_PINK"}}
}
