package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// stallOnce answers the first request that match accepts itself, by taking its body and then
// going silent (before the headers, or after the headers and a few body bytes) with the
// connection open; every other request goes to next.
type stallOnce struct {
	next        http.Handler
	match       func(*http.Request) bool
	afterHeader bool
	done        atomic.Bool
	t           *testing.T
}

func (s *stallOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.match(r) || !s.done.CompareAndSwap(false, true) {
		s.next.ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	if s.afterHeader {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(200)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`)
		w.(http.Flusher).Flush()
	}
	select {
	case <-r.Context().Done():
	case <-s.t.Context().Done():
	}
}

// stallingFake is the fake S3 behind stallOnce, reached through the production client with
// short stall limits; it returns the store and the log.
func stallingFake(t *testing.T, s *stallOnce) (*fakeS3, *Store, *testenv.Output) {
	f := &fakeS3{t: t, objects: map[string][]byte{}, headers: map[string]http.Header{}, uploads: map[string]*fakeUpload{}}
	s.next, s.t = f, t
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(f.assertWriteOnly)
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	client, err := NewClient(context.Background(), ClientOptions{Region: "us-east-1", ForcePathStyle: true,
		Stall: stall.Options{Idle: 2 * time.Second, Header: 3 * time.Second}}) // hold on a busy machine under -race
	if err != nil {
		t.Fatal(err)
	}
	return f, New(client, Options{Bucket: "bkt", PartSize: MinPartSize}), &testenv.Output{}
}

func putWithin(t *testing.T, s *Store, log *testenv.Output, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(zerolog.New(log).WithContext(context.Background()), 60*time.Second)
	defer cancel()
	if err := s.Put(ctx, store.Object{Key: key, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put: %v\n%s", err, log)
	}
}

// A CompleteMultipartUpload whose answer stops after its first bytes is cancelled and retried.
func TestCompleteAnswerThatStallsIsRetried(t *testing.T) {
	s := &stallOnce{afterHeader: true, match: func(r *http.Request) bool { return r.Method == "POST" && r.URL.Query().Has("uploadId") }}
	f, st, log := stallingFake(t, s)
	data := source(7, MinPartSize+100)
	putWithin(t, st, log, "c.dump", data)
	if got, _, ok := f.object("c.dump"); !ok || !bytes.Equal(got, data) {
		t.Fatal("the object is not stored intact")
	}
	if !s.done.Load() || f.openUploads() != 0 {
		t.Fatalf("stalled %v, open uploads %d", s.done.Load(), f.openUploads())
	}
	if out := log.String(); !strings.Contains(out, `"request":"complete multipart upload s3://bkt/c.dump"`) || !strings.Contains(out, `"stalled":"response body"`) {
		t.Fatalf("log: %s", out)
	}
}

// A PutObject that is never answered is cancelled and retried.
func TestUnansweredPutObjectIsRetried(t *testing.T) {
	s := &stallOnce{match: func(r *http.Request) bool { return r.Method == "PUT" }}
	f, st, log := stallingFake(t, s)
	data := source(8, 1000)
	putWithin(t, st, log, "small.json", data)
	if got, _, ok := f.object("small.json"); !ok || !bytes.Equal(got, data) {
		t.Fatal("the object is not stored intact")
	}
	if out := log.String(); !strings.Contains(out, `"request":"put object s3://bkt/small.json"`) || !strings.Contains(out, `"stalled":"response headers"`) {
		t.Fatalf("log: %s", out)
	}
}

// A CreateMultipartUpload that is never answered is cancelled and retried.
func TestUnansweredCreateIsRetried(t *testing.T) {
	s := &stallOnce{match: func(r *http.Request) bool { return r.Method == "POST" && r.URL.Query().Has("uploads") }}
	f, st, log := stallingFake(t, s)
	data := source(9, MinPartSize+1)
	putWithin(t, st, log, "m.dump", data)
	if got, _, ok := f.object("m.dump"); !ok || !bytes.Equal(got, data) {
		t.Fatal("the object is not stored intact")
	}
	if out := log.String(); !strings.Contains(out, `"request":"create multipart upload s3://bkt/m.dump"`) {
		t.Fatalf("log: %s", out)
	}
}

// An archive being read back whose body stops arriving fails the read, saying it stalled,
// instead of holding verify or restore forever.
func TestReadBackThatStallsFails(t *testing.T) {
	s := &stallOnce{afterHeader: true, match: func(r *http.Request) bool { return r.Method == "GET" }}
	_, st, _ := stallingFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc, _, err := NewReader(st.client, "bkt", "").Open(ctx, "a.dump")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	var se *stall.Error
	if !errors.As(err, &se) || se.Phase != "response body" || ctx.Err() != nil {
		t.Fatalf("err %v", err)
	}
}

// neverAnswers takes the body of every request match accepts and never answers it, connection
// open; every other request goes to next.
type neverAnswers struct {
	next  http.Handler
	match func(*http.Request) bool
	seen  atomic.Int32
	t     *testing.T
}

func (s *neverAnswers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.match(r) {
		s.next.ServeHTTP(w, r)
		return
	}
	s.seen.Add(1)
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-s.t.Context().Done():
	}
}

// A part that is never answered is tried three times, however many attempts the client allows
// other failures, and each attempt is given up after the upload's answer limit, however long
// the client would wait: a destination that stops answering fails its copy within about two
// minutes instead of ten attempts of a minute. The upload is aborted.
func TestUnansweredPartIsGivenUpAfterThreeAttempts(t *testing.T) {
	f := &fakeS3{t: t, objects: map[string][]byte{}, headers: map[string]http.Header{}, uploads: map[string]*fakeUpload{}}
	h := &neverAnswers{next: f, t: t, match: func(r *http.Request) bool {
		return r.Method == "PUT" && r.URL.Query().Get("partNumber") == "1"
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(f.assertWriteOnly)
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	client, err := NewClient(context.Background(), ClientOptions{Region: "us-east-1", ForcePathStyle: true,
		Stall: stall.Options{Idle: 5 * time.Second, Header: time.Hour}}) // the default 10 attempts
	if err != nil {
		t.Fatal(err)
	}
	st := New(client, Options{Bucket: "bkt", PartSize: MinPartSize})
	st.answerWithin = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := source(10, MinPartSize+1)
	err = st.Put(ctx, store.Object{Key: "never.dump", Size: int64(len(data))}, bytes.NewReader(data))
	var se *stall.Error
	if !errors.As(err, &se) || se.Phase != "response headers" || se.Quiet != time.Second || !se.Final || ctx.Err() != nil {
		t.Fatalf("Put = %v, want a final stall of 1s", err)
	}
	if n := h.seen.Load(); n != 1+uploadStallRetries {
		t.Fatalf("part 1 was sent %d times (%v), want %d", n, err, 1+uploadStallRetries)
	}
	if _, _, ok := f.object("never.dump"); ok || f.openUploads() != 0 {
		t.Fatalf("object published %v, open uploads %d", ok, f.openUploads())
	}
}
