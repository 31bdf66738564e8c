package gcsstore

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
// Put fails in bounded time naming the object, never takes the page for a stored object or an
// existing one.
func TestPutAnsweredWithAnHTMLPage(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			w.Write([]byte("<html><body>Gateway says hello</body></html>"))
		}))
		s, err := Open(context.Background(), Options{Bucket: "acme", Prefix: "pg", Endpoint: srv.URL, ChunkSize: 256 << 10, RetryDeadline: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{3, 1 << 20} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := s.Put(ctx, store.Object{Key: "k", Size: int64(size)}, strings.NewReader(strings.Repeat("x", size)))
			cancel()
			t.Logf("%d, %d bytes: %v", status, size, err)
			if err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "put gs://acme/pg/k: ") {
				t.Errorf("%d, %d bytes: Put = %v", status, size, err)
			}
		}
		s.Close()
		srv.Close()
	}
}
