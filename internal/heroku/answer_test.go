package heroku

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// maintenancePage is what Heroku's router serves during maintenance: status 200, HTML.
const maintenancePage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Heroku | Offline for Maintenance</title></head>
<body><h1>Offline for maintenance</h1><p>This app is undergoing maintenance right now.</p></body></html>`

// badAnswers are 2xx answers that are not the JSON the API promises.
var badAnswers = []struct {
	name, ctype, body string
	want              string
}{
	{"HTML maintenance page", "text/html; charset=utf-8", maintenancePage, `with an HTML page ("Heroku | Offline for Maintenance") instead of JSON`},
	{"HTML labelled JSON", "application/json", "<h1>Service Unavailable</h1>", "with an HTML page instead of JSON"},
	{"truncated JSON", "application/json", `{"email":"ops@exa`, "with JSON cut short or malformed (17 bytes)"},
	{"truncated list", "application/json", `[{"uuid":"0000-1","num":1},{"uuid":`, "with JSON cut short or malformed"},
	{"empty", "application/json", "", "with an empty body instead of JSON"},
}

func serveBody(ctype, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(200)
		io.WriteString(w, body)
	}
}

// TestBadAnswersAreRetried: a 200 that is not JSON is transient, on both APIs: the next
// attempt gets the real answer.
func TestBadAnswersAreRetried(t *testing.T) {
	for _, tc := range badAnswers {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFake(t)
			bad := serveBody(tc.ctype, tc.body)
			f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
				if f.count("GET /account") <= 2 {
					bad(w, r)
					return
				}
				writeJSON(w, 200, map[string]string{"email": "ops@example.com"})
			})
			email, err := c.Account(context.Background())
			if err != nil || email != "ops@example.com" || f.count("GET /account") != 3 {
				t.Errorf("platform: email %q err %v after %d calls", email, err, f.count("GET /account"))
			}

			route := "GET /client/v11/apps/shop/transfers/4"
			f.on(route, func(w http.ResponseWriter, r *http.Request) {
				if f.count(route) <= 2 {
					bad(w, r)
					return
				}
				writeJSON(w, 200, transfer(4, "DATABASE", time.Now(), yes, true))
			})
			tr, err := c.Transfer(context.Background(), shopDB(), 4)
			if err != nil || tr.Num != 4 || f.count(route) != 3 {
				t.Errorf("data: transfer %d err %v after %d calls", tr.Num, err, f.count(route))
			}
		})
	}
}

// TestBadAnswersThatPersistSaySo: when the retries run out, the error says what Heroku sent
// and that retrying did not help, not "invalid character '<'".
func TestBadAnswersThatPersistSaySo(t *testing.T) {
	for _, tc := range badAnswers {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFake(t)
			c := f.client(Options{RetryBudget: time.Second}) // a second attempt fits in it on a busy machine
			f.on("GET /account", serveBody(tc.ctype, tc.body))
			f.on("GET /client/v11/apps/shop/transfers", serveBody(tc.ctype, tc.body))
			_, perr := c.Account(context.Background())
			_, derr := c.Latest(context.Background(), shopDB())
			for api, err := range map[string]error{"platform": perr, "data": derr} {
				if err == nil {
					t.Fatalf("%s: no error", api)
				}
				msg := err.Error()
				t.Logf("%s: %s", api, msg)
				for _, s := range []string{"Heroku answered 200 OK " + tc.want, "attempts over"} {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: error lacks %q:\n%s", api, s, msg)
					}
				}
				if strings.Contains(msg, "invalid character") || strings.Contains(msg, "<h1>") || strings.Contains(msg, "unexpected end") {
					t.Errorf("%s: a decoder's message or markup: %s", api, msg)
				}
				if IsPermanent(err) {
					t.Errorf("%s: a bad answer counts as permanent", api)
				}
			}
			for _, route := range []string{"GET /account", "GET /client/v11/apps/shop/transfers"} {
				if n := f.count(route); n < 2 {
					t.Errorf("%s was not retried: %d calls", route, n)
				}
			}
			if m := f.count("GET /client/v11/apps/shop/transfers"); !strings.Contains(derr.Error(), "heroku: latest backup app=shop database=DATABASE: GET /client/v11/apps/shop/transfers: Heroku answered") {
				t.Errorf("data error does not name the target and request once (%d calls): %v", m, derr)
			}
		})
	}
}

// TestCaptureAnsweredWithAnHTMLPage: the capture POST is not idempotent, so an HTML page in
// answer to it is treated like a 503: the backup the POST may have started is adopted, and a
// second POST goes out only when it started none.
func TestCaptureAnsweredWithAnHTMLPage(t *testing.T) {
	for _, started := range []bool{true, false} {
		name := map[bool]string{true: "the POST started a backup", false: "the POST started nothing"}[started]
		t.Run(name, func(t *testing.T) {
			f, c, list := captureFake(t)
			now := time.Now()
			list(transfer(7, "DATABASE", now.Add(-time.Hour), yes, true))
			f.on(backups, func(w http.ResponseWriter, r *http.Request) {
				if f.count(backups) == 1 {
					if started {
						list(transfer(8, "DATABASE", now, nil, false))
					}
					serveBody("text/html", maintenancePage)(w, r)
					return
				}
				list(transfer(9, "DATABASE", now, nil, false))
				writeJSON(w, http.StatusCreated, transfer(9, "DATABASE", now, nil, false))
			})
			tr, err := c.Capture(context.Background(), shopDB())
			if err != nil {
				t.Fatal(err)
			}
			wantNum, wantPosts := 9, 2
			if started {
				wantNum, wantPosts = 8, 1
			}
			if tr.Num != wantNum || f.count(backups) != wantPosts {
				t.Errorf("got b%03d after %d POSTs; want b%03d after %d", tr.Num, f.count(backups), wantNum, wantPosts)
			}
		})
	}
}

// TestEmptyAnswerWhereNothingIsRead: a cancel reads nothing from its answer, so an empty 200
// is fine there.
func TestEmptyAnswerWhereNothingIsRead(t *testing.T) {
	f, c := newFake(t)
	route := "POST /client/v11/apps/shop/transfers/0000-9/actions/cancel"
	f.on(route, serveBody("application/json", ""))
	if err := c.Cancel(context.Background(), shopDB(), Transfer{UUID: "0000-9", Num: 9}); err != nil || f.count(route) != 1 {
		t.Errorf("cancel: %v after %d calls", err, f.count(route))
	}
}

// TestCutAnswerIsANetworkError: a connection that drops after the headers, mid-body, is
// retried like any dropped connection.
func TestCutAnswerIsANetworkError(t *testing.T) {
	f, c := newFake(t)
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		if f.count("GET /account") == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, `{"email":`)
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		writeJSON(w, 200, map[string]string{"email": "ops@example.com"})
	})
	email, err := c.Account(context.Background())
	if err != nil || email != "ops@example.com" || f.count("GET /account") != 2 {
		t.Errorf("email %q err %v after %d calls", email, err, f.count("GET /account"))
	}
}

func TestTooLargeAnswerIsNotRetried(t *testing.T) {
	err := checkAnswer(&http.Request{Method: "GET", URL: mustURL("/x")}, &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}}, make([]byte, maxAnswer+1))
	if err == nil || transient(err) || !strings.Contains(err.Error(), "more than 64 MiB") {
		t.Errorf("err = %v", err)
	}
	var ae *answerError
	if !errors.As(error(err), &ae) {
		t.Errorf("not an answerError")
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
