package azstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// A proxy or captive portal in the way answers with an HTML page, as a success or as a 502:
// Put fails at once naming the blob, never takes the page for a stored blob or an existing one.
func TestPutAnsweredWithAnHTMLPage(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusCreated, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			w.Write([]byte("<html><body>Gateway says hello</body></html>"))
		}))
		st, err := Open(Options{Settings: Settings{Account: "acct", Container: "backups", Endpoint: srv.URL + "/acct"},
			Credentials: Credentials{SASToken: "sv=2024&sp=c&sig=c2VjcmV0"}, PartSize: testPartSize, Parts: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{3, 3 * testPartSize} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := st.Put(ctx, store.Object{Key: "k", Size: int64(size)}, strings.NewReader(strings.Repeat("x", size)))
			cancel()
			t.Logf("%d, %d bytes: %v", status, size, err)
			if err == nil || errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "azblob://acct/backups/k") ||
				!strings.Contains(err.Error(), "did not come from Azure Storage") {
				t.Errorf("%d, %d bytes: Put = %v", status, size, err)
			}
		}
		srv.Close()
	}
}
