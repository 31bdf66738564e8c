package fetch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOpenSendsPlainGET(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" {
			t.Errorf("request %s with Authorization %q, want a plain GET", r.Method, r.Header.Get("Authorization"))
		}
		io.WriteString(w, "PGDMP-body")
	}))
	defer srv.Close()
	body, size, err := (&Client{}).Open(context.Background(), srv.URL+"/x.dump?X-Amz-Signature=s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, _ := io.ReadAll(body)
	if string(b) != "PGDMP-body" || size != int64(len(b)) {
		t.Errorf("got %q size %d", b, size)
	}
}

func TestOpenErrorsNameTheHostOnly(t *testing.T) {
	expired := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
	}))
	defer expired.Close()
	// A listener that is closed at once: connection refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	// A body cut short of its Content-Length.
	short := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "PGDMP")
	}))
	defer short.Close()

	tests := []struct {
		name, url, want string
	}{
		{"expired", expired.URL, "403 Forbidden (AccessDenied: Request has expired)"},
		{"refused", dead, "connection refused"},
		{"plain http elsewhere", "http://example.com", "refusing plain http to example.com"},
		{"ftp", "ftp://127.0.0.1/x", `refusing URL scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := (&Client{}).Open(context.Background(), tt.url+"/b.dump?X-Amz-Signature=s3cr3t")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "b.dump") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}

	body, _, err := (&Client{}).Open(context.Background(), short.URL+"/b.dump?X-Amz-Signature=s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(body)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("short body: err = %v, want an error without the URL", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "127.8.9.1": true,
		"10.0.0.1": false, "example.com": false, "169.254.169.254": false} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}
