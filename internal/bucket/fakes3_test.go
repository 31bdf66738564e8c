package bucket

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fakeS3 answers the bucket-configuration requests setup makes the way
// Amazon S3 does, storing each configuration document as sent. It records
// every request so tests can check what went over the wire.
type fakeS3 struct {
	mu       sync.Mutex
	region   string            // x-amz-bucket-region and location
	exists   bool              // bucket exists
	head     int               // if set, HeadBucket answers this status
	create   string            // if set, CreateBucket fails with this code (409)
	docs     map[string][]byte // sub-resource -> stored document
	notImpl  map[string]bool   // sub-resource -> answers 501 NotImplemented
	denied   bool              // every sub-resource answers 403 AccessDenied (the uploader's keys)
	requests []fakeRequest
}

type fakeRequest struct {
	Method, Sub string
	Header      http.Header
	Body        string
}

var subresources = []string{"versioning", "encryption", "publicAccessBlock", "policy", "lifecycle", "object-lock", "location"}

var notFoundCodes = map[string]string{
	"encryption":        "ServerSideEncryptionConfigurationNotFoundError",
	"publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
	"policy":            "NoSuchBucketPolicy",
	"lifecycle":         "NoSuchLifecycleConfiguration",
	"object-lock":       "ObjectLockConfigurationNotFoundError",
}

func newFakeS3(t *testing.T, region string, exists bool) (*fakeS3, *s3.Client) {
	f := &fakeS3{region: region, exists: exists, docs: map[string][]byte{}, notImpl: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
	return f, client
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	sub := ""
	for _, s := range subresources {
		if _, ok := r.URL.Query()[s]; ok {
			sub = s
		}
	}
	f.requests = append(f.requests, fakeRequest{Method: r.Method, Sub: sub, Header: r.Header.Clone(), Body: string(body)})
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
		}
	}
	w.Header().Set("X-Amz-Bucket-Region", f.region)
	switch {
	case sub == "" && r.Method == http.MethodHead:
		switch {
		case f.head != 0:
			fail(f.head, http.StatusText(f.head))
		case !f.exists:
			fail(http.StatusNotFound, "NotFound")
		}
	case sub == "" && r.Method == http.MethodPut:
		if f.create != "" {
			fail(http.StatusConflict, f.create)
			return
		}
		f.exists = true
	case !f.exists:
		fail(http.StatusNotFound, "NoSuchBucket")
	case f.denied && sub != "":
		fail(http.StatusForbidden, "AccessDenied")
	case f.notImpl[sub]:
		fail(http.StatusNotImplemented, "NotImplemented")
	case sub == "location":
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint>%s</LocationConstraint>`, f.region)
	case r.Method == http.MethodPut:
		f.docs[sub] = body
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodGet:
		doc, ok := f.docs[sub]
		switch {
		case ok:
			_, _ = w.Write(doc)
		case sub == "versioning":
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration/>`)
		default:
			fail(http.StatusNotFound, notFoundCodes[sub])
		}
	default:
		fail(http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
}

// sent returns the bodies of the requests with this method and sub-resource.
func (f *fakeS3) sent(method, sub string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.Method == method && r.Sub == sub {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeS3) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

func kinds(p Plan) string {
	var ks []string
	for _, a := range p.Actions {
		ks = append(ks, a.Kind)
	}
	return strings.Join(ks, ",")
}

func mustPlan(t *testing.T, s *Setup) Plan {
	t.Helper()
	p, err := s.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}
