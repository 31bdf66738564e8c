package fetch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func fixedURL(u string) URLFunc {
	return func(ctx context.Context) (string, time.Time, error) { return u, time.Now().Add(time.Hour), nil }
}

func TestOpenErrorsNameTheHostOnly(t *testing.T) {
	expired := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
	}))
	defer expired.Close()
	notFound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>`)
	}))
	defer notFound.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String() // connection refused
	l.Close()

	tests := []struct {
		name, url, want string
	}{
		{"expired twice", expired.URL, "403 Forbidden (AccessDenied: Request has expired)"},
		{"not found", notFound.URL, "404 Not Found (NoSuchKey)"},
		{"refused", dead, "connection refused"},
		{"plain http elsewhere", "http://example.com", "refusing plain http to example.com"},
		{"ftp", "ftp://127.0.0.1/x", `refusing URL scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Ranged{Options: Options{MaxAttempts: 2, BaseDelay: time.Millisecond}}
			_, _, err := d.Open(context.Background(), fixedURL(tt.url+"/b.dump?X-Amz-Signature=s3cr3t"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "b.dump") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
}
