package s3errtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

// Refusal is how one provider refuses a request carrying S3's newer checksum headers.
type Refusal struct {
	Name   string
	Status int
	Code   string
	// Message formats the refused header's name and value into the provider's message.
	Message string
}

// The refusals as the providers answer them.
var (
	// R2Refusal: Cloudflare R2 on a part upload or write carrying x-amz-checksum-* (501).
	R2Refusal = Refusal{Name: "R2", Status: http.StatusNotImplemented, Code: "NotImplemented",
		Message: "Header '%s' with value '%s' not implemented"}
	// B2Refusal: Backblaze B2 before it took the headers (400).
	B2Refusal = Refusal{Name: "B2", Status: http.StatusBadRequest, Code: "InvalidArgument",
		Message: "Unsupported header '%s' received for this API call."}
	// GCSRefusal: Google Cloud Storage's XML API (400).
	GCSRefusal = Refusal{Name: "GCS", Status: http.StatusBadRequest, Code: "InvalidArgument",
		Message: "Invalid argument: header %s (value %s) is not supported."}
)

// Refusals are the refusals above.
var Refusals = []Refusal{R2Refusal, B2Refusal, GCSRefusal}

// RefusingProxy stands in for a provider that refuses S3's newer checksum headers: a reverse
// proxy in front of a real S3 server (upstream) that answers how with the provider's error for
// every request carrying x-amz-checksum-*, x-amz-sdk-checksum-algorithm or x-amz-trailer, and
// passes every other request on unchanged (the Host header too, so signatures still verify).
type RefusingProxy struct {
	*httptest.Server
	refused atomic.Int64
	passed  atomic.Int64
}

// Refused is how many requests the proxy refused; Passed how many it passed on.
func (p *RefusingProxy) Refused() int64 { return p.refused.Load() }
func (p *RefusingProxy) Passed() int64  { return p.passed.Load() }

// RefuseChecksums starts a RefusingProxy in front of upstream, answering how; it stops when the
// test ends.
func RefuseChecksums(t testing.TB, upstream string, how Refusal) *RefusingProxy {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("upstream %q: %v", upstream, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	direct := rp.Director
	rp.Director = func(r *http.Request) {
		host := r.Host
		direct(r)
		r.Host = host // signed: it must reach the store as the client sent it
	}
	p := &RefusingProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, value, ok := checksumHeader(r.Header); ok {
			p.refused.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(how.Status)
			fmt.Fprintf(w, head+`<Error><Code>%s</Code><Message>%s</Message></Error>`, how.Code, fmt.Sprintf(how.Message, name, value))
			return
		}
		p.passed.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// checksumHeader is the first (by name) of the headers the providers refuse in h.
func checksumHeader(h http.Header) (name, value string, ok bool) {
	var names []string
	for k := range h {
		l := strings.ToLower(k)
		if strings.HasPrefix(l, "x-amz-checksum-") || l == "x-amz-sdk-checksum-algorithm" || l == "x-amz-trailer" {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return "", "", false
	}
	sort.Strings(names)
	return names[0], h.Get(names[0]), true
}
