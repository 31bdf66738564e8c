package azstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// A server that takes the request and never answers keeps the connection open forever: the
// stall watcher cuts each try, the SDK's retries run out, and Put fails instead of hanging.
func TestPutToAServerThatNeverAnswersFails(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	st, err := Open(Options{Settings: Settings{Account: "acct", Container: "backups", Endpoint: srv.URL + "/acct"},
		Credentials: Credentials{SASToken: "sv=2024&sp=c&sig=c2VjcmV0"}, PartSize: testPartSize, Parts: 2,
		Stall: stall.Options{Header: 300 * time.Millisecond, Idle: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	err = st.Put(ctx, store.Object{Key: "k", Size: 3}, strings.NewReader("abc"))
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put = %v, want the stall's error before the test's deadline", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("Put took %s", took)
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("error shows the signature: %v", err)
	}
	t.Logf("after %s: %v", time.Since(start), err)
}
