package s3store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fakeS3 is just enough of S3 to exercise the request sequences Put makes, with switches for the
// answers that are hard to provoke from a real server. It checks every body's SHA-256 and records
// every request so tests can assert that Put never reads, lists or deletes.
type fakeS3 struct {
	t *testing.T

	// Behaviour switches, set before use.
	rejectConditional bool          // answer 501 NotImplemented to If-None-Match
	completeConflicts int           // answer this many Completes with 409 ConditionalRequestConflict
	failPart          int           // answer UploadPart for this part number with 403
	partDelay         time.Duration // hold each UploadPart this long (to observe concurrency)
	discard           bool          // keep only sizes and hashes, not bytes
	onCreate          func()        // called once an upload exists, before its ID is answered

	mu            sync.Mutex
	objects       map[string][]byte
	headers       map[string]http.Header // request headers of the write that created each object
	uploads       map[string]*fakeUpload
	nextID        int
	requests      []string
	completeCalls int
	inflight      int
	maxInflight   int
	partSizes     map[int]int64 // body size of the last UploadPart of each part number
}

type fakeUpload struct {
	key    string
	header http.Header
	parts  map[int]fakePart
}

type fakePart struct {
	data   []byte
	size   int64
	sha256 string
	etag   string
}

func newFakeS3(t *testing.T) (*fakeS3, *s3.Client) { return startFakeS3(t, false) }

func startFakeS3(t *testing.T, tls bool) (*fakeS3, *s3.Client) {
	f := &fakeS3{t: t, objects: map[string][]byte{}, headers: map[string]http.Header{}, uploads: map[string]*fakeUpload{}}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(f)
	} else {
		srv = httptest.NewServer(f)
	}
	t.Cleanup(srv.Close)
	t.Cleanup(f.assertWriteOnly)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAFAKE", "secret", ""),
		HTTPClient:   srv.Client(),
	})
	return f, client
}

// assertWriteOnly fails the test if anything but the five write calls reached the fake.
func (f *fakeS3) assertWriteOnly() {
	f.mu.Lock()
	defer f.mu.Unlock()
	allowed := []string{"PUT object", "POST create", "PUT part", "POST complete", "DELETE abort"}
	for _, r := range f.requests {
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(r, a+" ") {
				ok = true
			}
		}
		if !ok {
			f.t.Errorf("fake S3 saw a request the uploader credentials may not make: %s", r)
		}
	}
}

func (f *fakeS3) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeS3) openUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.uploads)
}

func (f *fakeS3) object(key string) ([]byte, http.Header, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[key]
	return b, f.headers[key], ok
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>fake</RequestId></Error>`, code, msg)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Path style: /bucket/key...
	key := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	if len(key) < 2 || key[1] == "" {
		f.record(r.Method + " bucket " + r.URL.String())
		s3Error(w, 400, "InvalidRequest", "bucket-level request")
		return
	}
	k := key[1]
	_, uploadsQ := q["uploads"]
	switch {
	case r.Method == http.MethodPut && q.Get("uploadId") == "":
		f.record("PUT object " + k)
		f.putObject(w, r, k)
	case r.Method == http.MethodPost && uploadsQ:
		f.record("POST create " + k)
		f.create(w, r, k)
	case r.Method == http.MethodPut:
		f.record("PUT part " + k + " " + q.Get("partNumber"))
		f.uploadPart(w, r, q.Get("uploadId"), q.Get("partNumber"))
	case r.Method == http.MethodPost && q.Get("uploadId") != "":
		f.record("POST complete " + k)
		f.complete(w, r, k, q.Get("uploadId"))
	case r.Method == http.MethodDelete && q.Get("uploadId") != "":
		f.record("DELETE abort " + k)
		f.mu.Lock()
		delete(f.uploads, q.Get("uploadId"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		f.record(r.Method + " other " + r.URL.String())
		s3Error(w, 405, "MethodNotAllowed", "not in the fake")
	}
}

func (f *fakeS3) record(s string) {
	f.mu.Lock()
	f.requests = append(f.requests, s)
	f.mu.Unlock()
}

// readBody reads the body and checks it against x-amz-checksum-sha256 and x-amz-content-sha256.
func (f *fakeS3) readBody(w http.ResponseWriter, r *http.Request) (data []byte, size int64, sum string, ok bool) {
	// A body in aws-chunked framing carries its checksum in a trailer; stores that do not speak
	// it (and proxies that re-frame) would store the framing, so Put must never send one.
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") || r.Header.Get("X-Amz-Trailer") != "" {
		s3Error(w, 400, "InvalidRequest", "aws-chunked body")
		return nil, 0, "", false
	}
	want := r.Header.Get("X-Amz-Checksum-Sha256")
	if want == "" {
		s3Error(w, 400, "InvalidRequest", "missing x-amz-checksum-sha256")
		return nil, 0, "", false
	}
	h := sha256.New()
	var dst io.Writer = h
	var buf bytes.Buffer
	if !f.discard {
		dst = io.MultiWriter(h, &buf)
	}
	n, err := io.Copy(dst, r.Body)
	if err != nil {
		return nil, 0, "", false
	}
	d := h.Sum(nil)
	sum = base64.StdEncoding.EncodeToString(d)
	if sum != want {
		s3Error(w, 400, "BadDigest", "checksum mismatch")
		return nil, 0, "", false
	}
	if ch := r.Header.Get("X-Amz-Content-Sha256"); ch != fmt.Sprintf("%x", d) {
		s3Error(w, 400, "XAmzContentSHA256Mismatch", "payload hash mismatch")
		return nil, 0, "", false
	}
	return buf.Bytes(), n, sum, true
}

func (f *fakeS3) conditionalRefused(w http.ResponseWriter, r *http.Request, key string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	if f.rejectConditional {
		s3Error(w, 501, "NotImplemented", "A header you provided implies functionality that is not implemented")
		return true
	}
	f.mu.Lock()
	_, exists := f.objects[key]
	f.mu.Unlock()
	if exists {
		s3Error(w, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		return true
	}
	return false
}

func (f *fakeS3) putObject(w http.ResponseWriter, r *http.Request, key string) {
	data, _, sum, ok := f.readBody(w, r)
	if !ok || f.conditionalRefused(w, r, key) {
		return
	}
	f.mu.Lock()
	f.objects[key] = data
	f.headers[key] = r.Header.Clone()
	f.mu.Unlock()
	w.Header().Set("ETag", `"etag-single"`)
	w.Header().Set("X-Amz-Checksum-Sha256", sum)
}

func (f *fakeS3) create(w http.ResponseWriter, r *http.Request, key string) {
	f.mu.Lock()
	f.nextID++
	id := "upload-" + strconv.Itoa(f.nextID)
	f.uploads[id] = &fakeUpload{key: key, header: r.Header.Clone(), parts: map[int]fakePart{}}
	f.mu.Unlock()
	if f.onCreate != nil {
		f.onCreate()
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, id)
}

func (f *fakeS3) uploadPart(w http.ResponseWriter, r *http.Request, id, num string) {
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	n, _ := strconv.Atoi(num)
	if r.Header.Get("X-Amz-Sdk-Checksum-Algorithm") != "SHA256" {
		s3Error(w, 400, "InvalidRequest", "part without SHA256 checksum algorithm")
		return
	}
	data, size, sum, ok := f.readBody(w, r)
	if !ok {
		return
	}
	if n == f.failPart {
		s3Error(w, 403, "AccessDenied", "part refused by test")
		return
	}
	time.Sleep(f.partDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploads[id]
	if u == nil {
		s3Error(w, 404, "NoSuchUpload", "no such upload")
		return
	}
	etag := fmt.Sprintf(`"etag-%d"`, n)
	u.parts[n] = fakePart{data: data, size: size, sha256: sum, etag: etag}
	if f.partSizes == nil {
		f.partSizes = map[int]int64{}
	}
	f.partSizes[n] = size
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Amz-Checksum-Sha256", sum)
}

type completeBody struct {
	Parts []struct {
		PartNumber     int
		ETag           string
		ChecksumSHA256 string
	} `xml:"Part"`
}

func (f *fakeS3) complete(w http.ResponseWriter, r *http.Request, key, id string) {
	var body completeBody
	if err := xml.NewDecoder(r.Body).Decode(&body); err != nil {
		s3Error(w, 400, "MalformedXML", err.Error())
		return
	}
	f.mu.Lock()
	f.completeCalls++
	conflict := f.completeConflicts > 0
	if conflict {
		f.completeConflicts--
	}
	f.mu.Unlock()
	if conflict && r.Header.Get("If-None-Match") != "" {
		s3Error(w, 409, "ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource.")
		return
	}
	if f.conditionalRefused(w, r, key) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploads[id]
	if u == nil {
		s3Error(w, 404, "NoSuchUpload", "no such upload")
		return
	}
	if !sort.SliceIsSorted(body.Parts, func(i, j int) bool { return body.Parts[i].PartNumber < body.Parts[j].PartNumber }) {
		s3Error(w, 400, "InvalidPartOrder", "parts out of order")
		return
	}
	var obj []byte
	var total int64
	for i, p := range body.Parts {
		got, ok := u.parts[p.PartNumber]
		if !ok || got.etag != p.ETag || got.sha256 != p.ChecksumSHA256 || p.PartNumber != i+1 {
			s3Error(w, 400, "InvalidPart", fmt.Sprintf("part %d does not match", p.PartNumber))
			return
		}
		if i < len(body.Parts)-1 && got.size < MinPartSize {
			s3Error(w, 400, "EntityTooSmall", "part too small")
			return
		}
		obj = append(obj, got.data...)
		total += got.size
	}
	if len(body.Parts) != len(u.parts) {
		s3Error(w, 400, "InvalidPart", "parts uploaded but not listed")
		return
	}
	if want := r.Header.Get("X-Amz-Mp-Object-Size"); want != "" && want != strconv.FormatInt(total, 10) {
		s3Error(w, 400, "InvalidRequest", "object size mismatch")
		return
	}
	f.objects[key] = obj
	h := u.header.Clone()
	h.Set("If-None-Match", r.Header.Get("If-None-Match"))
	f.headers[key] = h
	delete(f.uploads, id)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><ETag>"etag-mpu-%d"</ETag></CompleteMultipartUploadResult>`, key, len(body.Parts))
}

// nothingWritten fails t unless a Put that failed left nothing of key behind: no object, no
// open multipart upload, and no final write attempted.
func (f *fakeS3) nothingWritten(t *testing.T, key string) {
	t.Helper()
	if _, _, ok := f.object(key); ok {
		t.Fatal("object visible")
	}
	if f.openUploads() != 0 {
		t.Fatal("multipart upload left open")
	}
	if f.count("POST complete") != 0 || f.count("PUT object") != 0 {
		t.Fatal("final write attempted")
	}
}
