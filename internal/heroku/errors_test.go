package heroku

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestErrorAnswersExplainWhatToDo(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		ctype     string
		body      string
		want      []string
		permanent bool
	}{
		{"401", 401, "application/json", `{"id":"unauthorized","message":"Invalid credentials provided."}`,
			[]string{"heroku: account: GET /account: 401 unauthorized: the API key (HEROKU_API_KEY) is invalid or expired (keys from `heroku login` expire; create a long-lived one with `heroku authorizations:create` and set it as HEROKU_API_KEY)"}, true},
		{"403 two_factor", 403, "application/json", `{"id":"two_factor","message":"Two-factor code is required."}`,
			[]string{"403 two_factor", "not usable for automation"}, true},
		{"403", 403, "application/json", `{"id":"forbidden","message":"You do not have access to the app shop."}`,
			[]string{"403 forbidden: You do not have access to the app shop.", "collaborator"}, true},
		{"404 JSON", 404, "application/json", `{"id":"not_found","message":"Couldn't find that app."}`,
			[]string{"404 not found: Couldn't find that app."}, true},
		{"404 HTML labelled JSON", 404, "application/json", `<h1>Not Found</h1>`, []string{"GET /account: 404 not found"}, true},
		{"404 HTML", 404, "text/html", "<html><body><h1>Not Found</h1></body></html>", []string{"GET /account: 404 not found"}, true},
		{"422", 422, "application/json", `{"id":"invalid_params","message":"Bad thing."}`, []string{"422 invalid_params: Bad thing."}, true},
		{"500 empty", 500, "", "", []string{"500 internal server error: Heroku's API is failing", "status.heroku.com"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFake(t)
			c := f.client(Options{RetryBudget: 10 * time.Millisecond})
			f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := c.Account(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if strings.Contains(err.Error(), "<") {
				t.Errorf("markup in the error: %v", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Op != "GET /account" {
				t.Errorf("not an *APIError with status and op: %#v", err)
			}
			if IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent = %v", !tc.permanent)
			}
			if n := f.count("GET /account"); tc.permanent && n != 1 {
				t.Errorf("a permanent error was retried: %d calls", n)
			}
		})
	}
}

func TestDataAPIErrorsToo(t *testing.T) {
	f, c := newFake(t)
	f.json("GET /client/v11/apps/shop/transfers/4", 401, map[string]string{"id": "unauthorized", "message": "Invalid credentials provided."})
	_, err := c.Transfer(context.Background(), shopDB(), 4)
	if err == nil || !strings.Contains(err.Error(), "heroku: transfer 4 app=shop database=DATABASE: GET /client/v11/apps/shop/transfers/4: 401 unauthorized: the API key (HEROKU_API_KEY) is invalid or expired") ||
		!IsPermanent(err) || f.count("GET /client/v11/apps/shop/transfers/4") != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	f, c := newFake(t)
	var first time.Time
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		switch f.count("GET /account") {
		case 1:
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			herokuError(w, 429, "rate_limit", "Your account reached the API rate limit")
		case 2:
			if d := time.Since(first); d < time.Second {
				t.Errorf("retried %s after a 429 asking for 1 s", d)
			}
			w.WriteHeader(503)
		default:
			writeJSON(w, 200, map[string]string{"email": "ops@example.com"})
		}
	})
	email, err := c.Account(context.Background())
	if err != nil || email != "ops@example.com" || f.count("GET /account") != 3 {
		t.Fatalf("email %q err %v after %d calls", email, err, f.count("GET /account"))
	}
}

func TestRetryAfterForms(t *testing.T) {
	if d := parseRetryAfter("7"); d != 7*time.Second {
		t.Errorf("seconds: %s", d)
	}
	if d := parseRetryAfter(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)); d < time.Second || d > 3*time.Second {
		t.Errorf("HTTP date: %s", d)
	}
	if d := parseRetryAfter("soon"); d != 0 {
		t.Errorf("garbage: %s", d)
	}
	rt := &retryTransport{base: time.Millisecond, cap: time.Millisecond}
	if d, ok := rt.wait(&http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"7"}}}, nil, 0); !ok || d != 7*time.Second {
		t.Errorf("429 waits %s, %v", d, ok)
	}
	for _, status := range []int{400, 401, 403, 404, 409, 422} {
		if _, ok := rt.wait(&http.Response{StatusCode: status}, nil, 0); ok {
			t.Errorf("%d retried by the transport", status)
		}
	}
}

func TestRetriesStopWithinTheBudgetAndOnCancel(t *testing.T) {
	f, _ := newFake(t)
	// A budget long enough for three calls on a busy machine; the bounds below are far from both
	// the budget and the 30 s Retry-After.
	c := f.client(Options{RetryBudget: 2 * time.Second})
	f.json("GET /account", 503, map[string]string{"id": "unavailable", "message": "down"})
	start := time.Now()
	_, err := c.Account(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503 unavailable: down") || f.count("GET /account") < 3 || time.Since(start) > 6*time.Second {
		t.Fatalf("after %d calls in %s: %v", f.count("GET /account"), time.Since(start), err)
	}

	// Retry-After beyond the budget: give up at once rather than wait past it.
	f.on("GET /apps/shop", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		herokuError(w, 429, "rate_limit", "Your account reached the API rate limit")
	})
	start = time.Now()
	err = c.platform.Get(context.Background(), nil, "/apps/shop", nil, nil)
	if !strings.Contains(fmt.Sprint(err), "429 rate limited") || f.count("GET /apps/shop") != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("after %d calls in %s: %v", f.count("GET /apps/shop"), time.Since(start), err)
	}

	// A cancelled context stops a back-off at once.
	c = f.client(Options{RetryBudget: time.Minute})
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		herokuError(w, 429, "rate_limit", "Your account reached the API rate limit")
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = c.Account(ctx)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled after %s: %v", time.Since(start), err)
	}
}

func TestNetworkErrorsAreRetriedForReadsOnly(t *testing.T) {
	f, c := newFake(t)
	drop := func(w http.ResponseWriter, r *http.Request) bool {
		if f.count(r.Method+" "+r.URL.Path) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		return false
	}
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		if !drop(w, r) {
			writeJSON(w, 200, map[string]string{"email": "ops@example.com"})
		}
	})
	if _, err := c.Account(context.Background()); err != nil || f.count("GET /account") != 2 {
		t.Errorf("account: %v after %d calls", err, f.count("GET /account"))
	}
	f.on("POST /client/v11/databases/a1/restores", func(w http.ResponseWriter, r *http.Request) {
		if !drop(w, r) {
			writeJSON(w, 201, transfer(3, "BACKUP", time.Now(), nil, false))
		}
	})
	if _, err := c.Restore(context.Background(), shopDB(), signedURL); err == nil || f.count("POST /client/v11/databases/a1/restores") != 1 {
		t.Errorf("restore: %v after %d calls", err, f.count("POST /client/v11/databases/a1/restores"))
	}
}

// TestSecretsNeverInErrors: whatever a server or the network does, no error shows the API key,
// a signed URL's signature or a database password.
func TestSecretsNeverInErrors(t *testing.T) {
	f, _ := newFake(t)
	c := f.client(Options{RetryBudget: 10 * time.Millisecond})
	echo := "key " + key + " url " + signedURL + " db " + dbURL
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		herokuError(w, 401, "unauthorized", "Invalid credentials: "+r.Header.Get("Authorization"))
	})
	f.on("GET /client/v11/apps/shop/transfers", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		io.WriteString(w, "<html><pre>"+echo+"</pre></html>")
	})
	f.json("POST /client/v11/apps/shop/transfers/3/actions/public-url", 422, map[string]string{"id": "invalid_params", "message": echo})
	f.json("GET /client/v11/apps/shop/transfers/3", 200, "not a transfer "+echo)
	var errs []error
	_, err := c.Account(context.Background())
	errs = append(errs, err)
	_, err = c.Latest(context.Background(), shopDB())
	errs = append(errs, err)
	_, err = c.PublicURL(context.Background(), shopDB(), Transfer{Num: 3})
	errs = append(errs, err)
	_, err = c.Transfer(context.Background(), shopDB(), 3)
	errs = append(errs, err)
	f.srv.Close() // the network fails: *url.Error names the URL
	_, err = c.PublicURL(context.Background(), shopDB(), Transfer{Num: 3})
	errs = append(errs, err)
	_, err = c.Resolve(context.Background(), "shop", "DATABASE_URL")
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error", i)
			continue
		}
		for _, secret := range []string{key, "deadbeefcafe", "X-Amz-Signature", "secretpw"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("call %d: error shows %q: %v", i, secret, err)
			}
		}
	}
	if !strings.Contains(errs[1].Error(), "https://xfrtu.s3.amazonaws.com/a1/2026/b.dump?[REDACTED]") {
		t.Errorf("the redacted message lost its useful part: %v", errs[1])
	}
}

// TestKeyGoesToTheConfiguredHostsOnly: a redirect elsewhere, or plain http to a remote host,
// must not carry the key anywhere.
func TestKeyGoesToTheConfiguredHostsOnly(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		writeJSON(w, 200, map[string]string{"email": "thief@example.com"})
	}))
	defer elsewhere.Close()
	f, c := newFake(t)
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)+"/account", http.StatusFound)
	})
	f.on("GET /client/v11/apps/shop/transfers/1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/x", http.StatusTemporaryRedirect)
	})
	_, err1 := c.Account(context.Background())
	_, err2 := c.Transfer(context.Background(), shopDB(), 1)
	if err1 == nil || !strings.Contains(err1.Error(), "GET /account: 302 found") {
		t.Errorf("Platform API redirected elsewhere: %v", err1)
	}
	if err2 == nil || !strings.Contains(err2.Error(), "refusing to send the Heroku API key to http://127.0.0.1:") {
		t.Errorf("Data API redirected elsewhere: %v", err2)
	}
	if leaked.Load() != 0 {
		t.Errorf("%d requests reached another host", leaked.Load())
	}

	var sent atomic.Int32
	remote := New(Options{APIKey: key, PlatformURL: "http://api.heroku.com", DataURL: "https://api.data.heroku.com",
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return nil, errors.New("no network in this test")
		})}})
	if _, err := remote.Account(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing") || sent.Load() != 0 {
		t.Errorf("plain http to a remote host: %v, %d requests sent", err, sent.Load())
	}
	if _, err := remote.Latest(context.Background(), shopDB()); err == nil || !strings.Contains(err.Error(), "refusing") || sent.Load() != 0 {
		t.Errorf("options that fail Validate still sent %d requests: %v", sent.Load(), err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestValidate(t *testing.T) {
	for _, bad := range []Options{
		{PlatformURL: "http://api.heroku.com"},
		{DataURL: "http://10.0.0.1:5000"},
		{PlatformURL: "api.heroku.com"},
		{PlatformURL: "https://user:pw@api.heroku.com"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error shows the credentials: %v", err)
		}
	}
	for _, good := range []Options{
		{},
		{PlatformURL: "https://api.heroku.com", DataURL: "https://api.data.heroku.com/"},
		{PlatformURL: "http://127.0.0.1:5000", DataURL: "http://localhost:5001"},
		{PlatformURL: "http://[::1]:5000"},
	} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v refused: %v", good, err)
		}
	}
}
