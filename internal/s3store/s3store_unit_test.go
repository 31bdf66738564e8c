package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// source returns n deterministic pseudo-random bytes.
func source(seed byte, n int) []byte {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func TestPartSizeGrowsToStayWithinMaxParts(t *testing.T) {
	cases := []struct {
		size, configured, want int64
	}{
		{100, DefaultPartSize, DefaultPartSize},
		{DefaultPartSize * maxParts, DefaultPartSize, DefaultPartSize},
		{DefaultPartSize*maxParts + 1, DefaultPartSize, 9 * mib},
		{5 << 40, MinPartSize, 525 * mib}, // 5 TiB, S3's largest object
	}
	for _, c := range cases {
		got := partSize(c.size, c.configured)
		if got != c.want {
			t.Errorf("partSize(%d, %d) = %d, want %d", c.size, c.configured, got, c.want)
		}
		if parts := (c.size + got - 1) / got; parts > maxParts {
			t.Errorf("partSize(%d) = %d needs %d parts", c.size, got, parts)
		}
	}
}

func TestNewAppliesDefaultsAndLimits(t *testing.T) {
	s := New(nil, Options{Bucket: "b", Prefix: "/backups/"})
	if s.o.PartSize != DefaultPartSize || s.o.Concurrency != DefaultConcurrency {
		t.Errorf("defaults: part %d concurrency %d", s.o.PartSize, s.o.Concurrency)
	}
	if got := s.Location("app/db.dump"); got != "s3://b/backups/app/db.dump" {
		t.Errorf("Location = %q", got)
	}
	if s := New(nil, Options{Bucket: "b", PartSize: 1}); s.o.PartSize != MinPartSize {
		t.Errorf("PartSize 1 became %d, want the 5 MiB minimum", s.o.PartSize)
	}
	if got := New(nil, Options{Bucket: "b"}).Location("k"); got != "s3://b/k" {
		t.Errorf("Location without prefix = %q", got)
	}
}

func TestSmallObjectIsOneConditionalPut(t *testing.T) {
	f, client := newFakeS3(t)
	s := New(client, Options{Bucket: "b", Prefix: "p", StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "key-1"})
	data := source(1, 1<<20)
	obj := store.Object{Key: "app/x.dump", Size: int64(len(data)), ContentType: "application/x-pg-dump"}
	if err := s.Put(context.Background(), obj, iotest.HalfReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	got, h, ok := f.object("p/app/x.dump")
	if !ok || !bytes.Equal(got, data) {
		t.Fatal("object missing or different")
	}
	for k, want := range map[string]string{
		"If-None-Match":                               "*",
		"Content-Type":                                "application/x-pg-dump",
		"X-Amz-Storage-Class":                         "STANDARD_IA",
		"X-Amz-Server-Side-Encryption":                "aws:kms",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "key-1",
		"X-Amz-Sdk-Checksum-Algorithm":                "SHA256",
	} {
		if h.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if n := f.count("POST create"); n != 0 {
		t.Errorf("%d multipart uploads for a small object", n)
	}
}

func TestMultipartUploadsConcurrentlyWithinLimit(t *testing.T) {
	f, client := newFakeS3(t)
	f.partDelay = 50 * time.Millisecond
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: 3, StorageClass: "GLACIER_IR", SSE: "AES256"})
	data := source(2, 23*mib)
	obj := store.Object{Key: "big.dump", Size: int64(len(data)), ContentType: "application/octet-stream"}
	if err := s.Put(context.Background(), obj, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, h, ok := f.object("big.dump")
	if !ok || !bytes.Equal(got, data) {
		t.Fatal("object missing or different")
	}
	if n := f.count("PUT part"); n != 5 {
		t.Errorf("%d parts, want 5", n)
	}
	if f.maxInflight != 3 {
		t.Errorf("at most %d parts in flight, want exactly the concurrency 3", f.maxInflight)
	}
	for k, want := range map[string]string{
		"If-None-Match":                "*",
		"X-Amz-Storage-Class":          "GLACIER_IR",
		"X-Amz-Server-Side-Encryption": "AES256",
		"X-Amz-Checksum-Algorithm":     "SHA256",
		"Content-Type":                 "application/octet-stream",
	} {
		if h.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), want)
		}
	}
}

// A part that is exactly the part size ends the object: the upload must still check for EOF.
func TestObjectOfExactlyOnePart(t *testing.T) {
	f, client := newFakeS3(t)
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
	data := source(3, MinPartSize)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := f.object("k"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	err := s.Put(context.Background(), store.Object{Key: "k2", Size: int64(len(data))}, bytes.NewReader(append(data, 0)))
	if !errors.Is(err, store.ErrSizeMismatch) {
		t.Fatalf("one byte too many: err = %v", err)
	}
	if f.openUploads() != 0 {
		t.Fatal("upload left open")
	}
}

// Over HTTPS the SDK would move the checksum into an aws-chunked trailer; Put sends it as a
// header and signs the payload hash it computed.
func TestHTTPSSendsChecksumHeaderNotTrailer(t *testing.T) {
	f, client := startFakeS3(t, true)
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
	for _, size := range []int{1000, 12 * mib} {
		key := fmt.Sprintf("k%d", size)
		data := source(11, size)
		if err := s.Put(context.Background(), store.Object{Key: key, Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got, _, _ := f.object(key); !bytes.Equal(got, data) {
			t.Fatalf("size %d: content differs", size)
		}
	}
}

func TestExistingObjectIsErrExists(t *testing.T) {
	for _, size := range []int{1000, 12 * mib} {
		f, client := newFakeS3(t)
		s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
		f.objects["k"] = []byte("original")
		err := s.Put(context.Background(), store.Object{Key: "k", Size: int64(size)}, bytes.NewReader(source(4, size)))
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: err = %v, want ErrExists", size, err)
		}
		if !strings.Contains(err.Error(), "s3://b/k") {
			t.Errorf("error does not name the object: %v", err)
		}
		if got, _, _ := f.object("k"); string(got) != "original" {
			t.Fatalf("size %d: original replaced", size)
		}
		if f.openUploads() != 0 {
			t.Fatalf("size %d: multipart upload left open", size)
		}
		if s.ConditionalWritesUnsupported() {
			t.Error("412 taken for lack of support")
		}
	}
}

func TestStoreWithoutConditionalWritesFallsBack(t *testing.T) {
	for _, size := range []int{1000, 12 * mib} {
		f, client := newFakeS3(t)
		f.rejectConditional = true
		s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
		data := source(5, size)
		if err := s.Put(context.Background(), store.Object{Key: "k1", Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got, _, _ := f.object("k1"); !bytes.Equal(got, data) {
			t.Fatalf("size %d: content differs", size)
		}
		if !s.ConditionalWritesUnsupported() {
			t.Fatalf("size %d: fallback not remembered", size)
		}
		// Remembered: the next Put goes straight to the unconditional write.
		before := f.count("PUT object") + f.count("POST complete")
		if err := s.Put(context.Background(), store.Object{Key: "k2", Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if n := f.count("PUT object") + f.count("POST complete") - before; n != 1 {
			t.Errorf("size %d: second Put made %d final writes, want 1", size, n)
		}
		if _, h, _ := f.object("k2"); h.Get("If-None-Match") != "" {
			t.Errorf("size %d: If-None-Match still sent", size)
		}
	}
}

func TestConflictingCompleteIsRetried(t *testing.T) {
	f, client := newFakeS3(t)
	f.completeConflicts = 2
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
	s.retryBase = time.Millisecond
	data := source(6, 11*mib)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if f.completeCalls != 3 {
		t.Errorf("Complete called %d times, want 3", f.completeCalls)
	}
	if got, _, _ := f.object("k"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

func TestPersistentConflictAborts(t *testing.T) {
	f, client := newFakeS3(t)
	f.completeConflicts = 1000
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
	s.retryBase = time.Millisecond
	err := s.Put(context.Background(), store.Object{Key: "k", Size: 11 * mib}, bytes.NewReader(source(7, 11*mib)))
	if err == nil || !strings.Contains(err.Error(), "ConditionalRequestConflict") {
		t.Fatalf("err = %v", err)
	}
	if f.completeCalls != completeAttempts {
		t.Errorf("Complete called %d times, want %d", f.completeCalls, completeAttempts)
	}
	if f.openUploads() != 0 || f.count("DELETE abort") != 1 {
		t.Fatal("upload not aborted")
	}
}

func TestFailedPartAbortsUpload(t *testing.T) {
	f, client := newFakeS3(t)
	f.failPart = 3
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: 2})
	err := s.Put(context.Background(), store.Object{Key: "k", Size: 30 * mib}, bytes.NewReader(source(8, 30*mib)))
	if err == nil || !strings.Contains(err.Error(), "upload part 3 of s3://b/k") {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := f.object("k"); ok {
		t.Fatal("object visible")
	}
	if f.openUploads() != 0 || f.count("DELETE abort") != 1 {
		t.Fatal("upload not aborted")
	}
	if n := f.count("POST complete"); n != 0 {
		t.Fatalf("Complete called after a failed part")
	}
}

func TestSourceProblemsLeaveNothing(t *testing.T) {
	boom := errors.New("connection reset by peer")
	const size = 17 * mib
	data := source(9, size)
	cases := []struct {
		name    string
		size    int64
		reader  func(cancel context.CancelFunc) io.Reader
		wantErr error
	}{
		{"reader error midway", size, func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:12*mib]), iotest.ErrReader(boom))
		}, boom},
		{"short", size + 1, func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, store.ErrSizeMismatch},
		{"long", size - 1, func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, store.ErrSizeMismatch},
		{"cancelled midway", size, func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:11*mib]), cancelReader{cancel}, bytes.NewReader(data[11*mib:]))
		}, context.Canceled},
		{"small and short", 1000, func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:999]) }, store.ErrSizeMismatch},
		{"small and long", 1000, func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:1001]) }, store.ErrSizeMismatch},
		{"first part fails", size, func(context.CancelFunc) io.Reader { return iotest.ErrReader(boom) }, boom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, client := newFakeS3(t)
			s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := s.Put(ctx, store.Object{Key: "k", Size: tc.size}, tc.reader(cancel))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			f.nothingWritten(t, "k")
		})
	}
}

// cancelReader cancels its context when read, then reads as empty.
type cancelReader struct{ cancel context.CancelFunc }

func (c cancelReader) Read([]byte) (int, error) { c.cancel(); return 0, io.EOF }

// The pool of part buffers bounds memory: (Concurrency+1) × PartSize however large the object.
func TestMemoryIsBounded(t *testing.T) {
	f, client := newFakeS3(t)
	f.discard = true
	const conc = 2
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: conc})
	const size = 100 * mib
	src := io.LimitReader(mrand.NewChaCha8([32]byte{10}), size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: size}, src); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	limit := uint64((conc+1)*MinPartSize + 8*mib) // buffers plus slack for the HTTP machinery of 20 requests
	t.Logf("allocated %d MiB for a %d MiB object", allocated/mib, size/mib)
	if allocated > limit {
		t.Fatalf("allocated %d MiB, want at most %d MiB", allocated/mib, limit/mib)
	}
}

// A cancel (SIGTERM) while the store opens the multipart upload leaves none open: the answer that
// names the upload is awaited, and the upload aborted.
func TestCancelWhileCreatingLeavesNoUpload(t *testing.T) {
	f, client := newFakeS3(t)
	s := New(client, Options{Bucket: "b", PartSize: 5 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	f.onCreate = func() {
		cancel()
		time.Sleep(200 * time.Millisecond) // the answer comes after the cancel
	}
	data := source(2, 12<<20)
	err := s.Put(ctx, store.Object{Key: "x.dump", Size: int64(len(data))}, bytes.NewReader(data))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if n := f.openUploads(); n != 0 {
		t.Errorf("%d uploads left open", n)
	}
	if n := f.count("DELETE abort"); n != 1 {
		t.Errorf("%d aborts, want 1", n)
	}
}
