package heroku

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// TestStalledAnswerIsRetried: Heroku's router sends the headers and half an answer, then
// nothing, with the connection left open. The call must not wait for ever: the silence cancels
// the request and the retry gets the whole answer.
func TestStalledAnswerIsRetried(t *testing.T) {
	f, _ := newFake(t)
	c := f.client(Options{RetryBudget: 10 * time.Second, Stall: stall.Options{Idle: 300 * time.Millisecond, Header: time.Second}})
	release := make(chan struct{})
	defer close(release)
	f.on("GET /client/v11/apps/shop/transfers/4", func(w http.ResponseWriter, r *http.Request) {
		if f.count("GET /client/v11/apps/shop/transfers/4") == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			io.WriteString(w, `{"uuid":"0000-1","num":4,`)
			w.(http.Flusher).Flush()
			select { // stalled: the connection stays open
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		writeJSON(w, 200, transfer(4, "DATABASE", time.Now(), yes, true))
	})
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		if f.count("GET /account") == 1 { // no headers at all
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		writeJSON(w, 200, map[string]string{"email": "ops@example.com"})
	})

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	tr, err := c.Transfer(ctx, shopDB(), 4)
	if err != nil || tr.Num != 4 {
		t.Fatalf("data API: transfer %d, err %v", tr.Num, err)
	}
	email, err := c.Account(ctx)
	if err != nil || email != "ops@example.com" {
		t.Fatalf("platform API: email %q, err %v", email, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to get past two stalls of about a second each", d)
	}
}

// TestStallThatPersistsSaysSo: a Heroku that never answers fails the call within the retry
// budget, and the error says the answer stalled.
func TestStallThatPersistsSaysSo(t *testing.T) {
	f, _ := newFake(t)
	// Two attempts fit in the budget even when a busy machine notices each stall late.
	c := f.client(Options{RetryBudget: 3 * time.Second, Stall: stall.Options{Idle: 200 * time.Millisecond, Header: 200 * time.Millisecond}})
	release := make(chan struct{})
	defer close(release)
	f.on("GET /account", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Account(ctx)
	if err == nil || !strings.Contains(err.Error(), "stalled") || ctx.Err() != nil {
		t.Fatalf("err %v (ctx %v): want a stall error before the test's deadline", err, ctx.Err())
	}
	if f.count("GET /account") < 2 {
		t.Errorf("%d attempts: a stall is worth retrying", f.count("GET /account"))
	}
}
