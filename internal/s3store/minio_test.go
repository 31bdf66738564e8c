package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/madmin-go/v3"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type minioEnv struct {
	m      *testenv.MinIO
	client *s3.Client
	bucket string
}

func startMinIO(t testing.TB) *minioEnv {
	t.Helper()
	m := testenv.StartMinIO(t)
	return &minioEnv{m: m, client: m.Client(t), bucket: m.CreateBucket(t, "s3store")}
}

func (e *minioEnv) store(o Options) *Store {
	o.Bucket = e.bucket
	return New(e.client, o)
}

func (e *minioEnv) get(t *testing.T, key string) []byte {
	t.Helper()
	out, err := e.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &e.bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *minioEnv) head(key string) (*s3.HeadObjectOutput, error) {
	return e.client.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: &e.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled,
	})
}

// assertNothingLeft checks that key does not exist and no multipart upload is open in the bucket.
func (e *minioEnv) assertNothingLeft(t *testing.T, key string) {
	t.Helper()
	_, err := e.head(key)
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject %s: err = %v, want NotFound", key, err)
	}
	if open := e.m.IncompleteUploads(t, e.bucket); len(open) != 0 {
		t.Errorf("multipart uploads left open: %v", open)
	}
}

func TestMinIOSmallObject(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{Prefix: "pre/fix"})
	data := source(20, 300<<10)
	obj := store.Object{Key: "app/db.dump", Size: int64(len(data)), ContentType: "application/x-pg-dump"}
	if err := s.Put(context.Background(), obj, iotest.HalfReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "pre/fix/app/db.dump"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	h, err := e.head("pre/fix/app/db.dump")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(h.ChecksumSHA256) == "" {
		t.Error("object has no SHA-256 checksum")
	}
	if aws.ToString(h.ContentType) != "application/x-pg-dump" {
		t.Errorf("content type %q", aws.ToString(h.ContentType))
	}
	if loc := s.Location("app/db.dump"); loc != "s3://"+e.bucket+"/pre/fix/app/db.dump" {
		t.Errorf("Location = %s", loc)
	}
}

func TestMinIOMultipartObject(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize, Concurrency: 3})
	data := source(21, 23*mib)
	obj := store.Object{Key: "big.dump", Size: int64(len(data)), ContentType: "application/octet-stream"}
	if err := s.Put(context.Background(), obj, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "big.dump"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	attrs, err := e.client.GetObjectAttributes(context.Background(), &s3.GetObjectAttributesInput{
		Bucket: &e.bucket, Key: aws.String("big.dump"),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize},
	})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Checksum == nil || aws.ToString(attrs.Checksum.ChecksumSHA256) == "" {
		t.Error("GetObjectAttributes shows no SHA-256 checksum")
	}
	if attrs.ObjectParts == nil || aws.ToInt32(attrs.ObjectParts.TotalPartsCount) != 5 {
		t.Errorf("parts = %+v, want 5", attrs.ObjectParts)
	}
	if aws.ToInt64(attrs.ObjectSize) != int64(len(data)) {
		t.Errorf("size = %d", aws.ToInt64(attrs.ObjectSize))
	}
	h, err := e.head("big.dump")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(h.ChecksumSHA256), "-5") {
		t.Errorf("HeadObject checksum %q, want a composite SHA-256 of 5 parts", aws.ToString(h.ChecksumSHA256))
	}
}

// The check that uploads were aborted must be able to see an open one.
func TestMinIOIncompleteUploadsAreVisible(t *testing.T) {
	e := startMinIO(t)
	ctx := context.Background()
	out, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &e.bucket, Key: aws.String("open")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &e.bucket, Key: aws.String("open"), UploadId: out.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(source(22, 1000)),
	}); err != nil {
		t.Fatal(err)
	}
	if open := e.m.IncompleteUploads(t, e.bucket); len(open) == 0 {
		t.Fatal("IncompleteUploads does not see an open upload")
	}
	s := e.store(Options{})
	if err := s.abort(ctx, "open", aws.ToString(out.UploadId)); err != nil {
		t.Fatal(err)
	}
	if open := e.m.IncompleteUploads(t, e.bucket); len(open) != 0 {
		t.Fatalf("still open after abort: %v", open)
	}
}

func TestMinIOFailuresLeaveNothing(t *testing.T) {
	e := startMinIO(t)
	boom := errors.New("connection reset by peer")
	const size = 23 * mib
	data := source(23, size)
	cases := []struct {
		name    string
		size    int64
		reader  func(cancel context.CancelFunc) io.Reader
		wantErr error
	}{
		{"reader error midway", size, func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:17*mib]), iotest.ErrReader(boom))
		}, boom},
		{"short reader", size + 1, func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, store.ErrSizeMismatch},
		{"long reader", size - 1, func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, store.ErrSizeMismatch},
		{"cancelled midway", size, func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:16*mib]), cancelReader{cancel}, bytes.NewReader(data[16*mib:]))
		}, context.Canceled},
		{"small and short", 1000, func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:999]) }, store.ErrSizeMismatch},
		{"small and long", 1000, func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:1001]) }, store.ErrSizeMismatch},
	}
	s := e.store(Options{PartSize: MinPartSize, Concurrency: 2})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("fail-%d", i)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := s.Put(ctx, store.Object{Key: key, Size: tc.size}, tc.reader(cancel))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			e.assertNothingLeft(t, key)
		})
	}
}

// Cancelling while the source is stalled (as SIGTERM during a slow download does) aborts the upload.
func TestMinIOCancelWhileSourceStalls(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize, Concurrency: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := source(24, 40*mib)
	// The source stalls after three parts until the context is cancelled from outside.
	stalled := make(chan struct{})
	r := io.MultiReader(bytes.NewReader(data[:15*mib]), stallReader{ctx, stalled}, bytes.NewReader(data[15*mib:]))
	go func() {
		<-stalled // the first three parts are read and the source has stopped
		cancel()
	}()
	err := s.Put(ctx, store.Object{Key: "cancelled", Size: int64(len(data))}, r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	e.assertNothingLeft(t, "cancelled")
}

// Cancelling while parts are on the wire still aborts the upload: the parts go through a proxy
// limited to 1 MB/s, so each 5 MiB part takes seconds.
func TestMinIOCancelDuringPartUpload(t *testing.T) {
	e := startMinIO(t)
	x := testenv.StartToxiproxy(t)
	p := x.Proxy(t, strings.TrimPrefix(e.m.Endpoint, "http://"))
	p.AddToxic(t, "bandwidth", "upstream", map[string]any{"rate": 1024})
	slow := clientFor("http://"+p.Listen, e.m.AccessKey, e.m.SecretKey, e.m.Region)
	s := New(slow, Options{Bucket: e.bucket, PartSize: MinPartSize, Concurrency: 2})

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	data := source(30, 20*mib)
	start := time.Now()
	err := s.Put(ctx, store.Object{Key: "on-the-wire", Size: int64(len(data))}, bytes.NewReader(data))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Put took %v to give up after cancellation", d)
	}
	e.assertNothingLeft(t, "on-the-wire")
}

func clientFor(endpoint, accessKey, secretKey, region string) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// The uploader's credentials may only put objects and abort uploads; Put must succeed with them,
// refuse to overwrite, and clean up after a failure.
func TestMinIOWriteOnlyCredentials(t *testing.T) {
	e := startMinIO(t)
	ctx := context.Background()
	adm, err := madmin.New(strings.TrimPrefix(e.m.Endpoint, "http://"), e.m.AccessKey, e.m.SecretKey, false)
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":["s3:PutObject","s3:AbortMultipartUpload"],"Resource":["arn:aws:s3:::%s/*"]}]}`, e.bucket)
	name := "uploader-" + e.bucket
	if err := adm.AddCannedPolicy(ctx, name, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	if err := adm.AddUser(ctx, name, "uploader-secret-123"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{name}, User: name}); err != nil {
		t.Fatal(err)
	}
	uploader := clientFor(e.m.Endpoint, name, "uploader-secret-123", e.m.Region)

	// The credentials really are write-only, or this test proves nothing.
	if _, err := uploader.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &e.bucket, Key: aws.String("x")}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("HeadObject with uploader credentials: err = %v, want 403", err)
	}

	s := New(uploader, Options{Bucket: e.bucket, PartSize: MinPartSize, SSE: "AES256"})
	for _, size := range []int{1000, 12 * mib} {
		key := fmt.Sprintf("wo-%d", size)
		data := source(31, size)
		if err := s.Put(ctx, store.Object{Key: key, Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got := e.get(t, key); !bytes.Equal(got, data) {
			t.Fatalf("size %d: content differs", size)
		}
		err := s.Put(ctx, store.Object{Key: key, Size: int64(size)}, bytes.NewReader(source(32, size)))
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: second Put err = %v, want ErrExists", size, err)
		}
		short := fmt.Sprintf("wo-short-%d", size)
		err = s.Put(ctx, store.Object{Key: short, Size: int64(size) + 1}, bytes.NewReader(data))
		if !errors.Is(err, store.ErrSizeMismatch) {
			t.Fatalf("size %d: short Put err = %v", size, err)
		}
		e.assertNothingLeft(t, short)
	}
}

// stallReader blocks until ctx is done; stalled, when not nil, is closed when it starts blocking.
type stallReader struct {
	ctx     context.Context
	stalled chan struct{}
}

func (s stallReader) Read([]byte) (int, error) {
	if s.stalled != nil {
		select {
		case <-s.stalled:
		default:
			close(s.stalled)
		}
	}
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

func TestMinIOExistingKeyIsKept(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize})
	ctx := context.Background()
	original := source(25, 1000)
	if err := s.Put(ctx, store.Object{Key: "k", Size: int64(len(original))}, bytes.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{2000, 12 * mib} {
		err := s.Put(ctx, store.Object{Key: "k", Size: int64(size)}, bytes.NewReader(source(26, size)))
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: err = %v, want ErrExists", size, err)
		}
		if got := e.get(t, "k"); !bytes.Equal(got, original) {
			t.Fatalf("size %d: original replaced", size)
		}
		if open := e.m.IncompleteUploads(t, e.bucket); len(open) != 0 {
			t.Fatalf("size %d: uploads left open: %v", size, open)
		}
	}
	if s.ConditionalWritesUnsupported() {
		t.Error("MinIO supports conditional writes, but the store decided it does not")
	}
}

func TestMinIOServerSideEncryption(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize, SSE: "AES256"})
	for _, size := range []int{4000, 11 * mib} {
		key := fmt.Sprintf("sse-%d", size)
		data := source(27, size)
		if err := s.Put(context.Background(), store.Object{Key: key, Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if got := e.get(t, key); !bytes.Equal(got, data) {
			t.Fatalf("size %d: content differs", size)
		}
		h, err := e.head(key)
		if err != nil {
			t.Fatal(err)
		}
		if h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Errorf("size %d: encryption %q, want AES256", size, h.ServerSideEncryption)
		}
	}
}

func TestMinIORejectsUnknownStorageClass(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{StorageClass: "NO_SUCH_CLASS"})
	err := s.Put(context.Background(), store.Object{Key: "k", Size: 3}, strings.NewReader("abc"))
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want the store's refusal", err)
	}
	e.assertNothingLeft(t, "k")
}

// NewClient builds a working client from the environment alone, with AWS_CA_BUNDLE set as on
// these machines.
func TestMinIONewClientFromEnvironment(t *testing.T) {
	e := startMinIO(t)
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", e.m.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", e.m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.m.SecretKey)
	client, err := NewClient(context.Background(), ClientOptions{Region: e.m.Region, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	s := New(client, Options{Bucket: e.bucket, PartSize: MinPartSize})
	data := source(28, 6*mib)
	if err := s.Put(context.Background(), store.Object{Key: "env", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "env"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

func BenchmarkPut(b *testing.B) {
	e := startMinIO(b)
	const size = 64 * mib
	data := source(29, size)
	s := e.store(Options{})
	b.SetBytes(size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("bench-%d", i)
		if err := s.Put(context.Background(), store.Object{Key: key, Size: size}, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// openUploads lists the multipart uploads open for exactly key, asked both of MinIO's API (which
// answers only for an exact key) and of its data directory.
func (e *minioEnv) openUploads(t *testing.T, key string) []string {
	t.Helper()
	out, err := e.client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &e.bucket, Prefix: &key})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", key, err)
	}
	var open []string
	for _, u := range out.Uploads {
		open = append(open, "api:"+aws.ToString(u.UploadId))
	}
	for _, id := range e.m.IncompleteUploadsOf(t, e.bucket, key) {
		open = append(open, "disk:"+id)
	}
	return open
}

func TestMinIOUnknownSizeObjects(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize, Concurrency: 3})
	cases := []struct {
		size, parts int // parts 0: a single PutObject
	}{
		{0, 0}, {1, 0}, {MinPartSize, 0}, {MinPartSize + 1, 2}, {3*MinPartSize + 7, 4}, {52*mib + 3, 11},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.size), func(t *testing.T) {
			key := fmt.Sprintf("unknown/%d.dump", c.size)
			data := source(50, c.size)
			obj := store.Object{Key: key, Size: store.UnknownSize, ContentType: "application/octet-stream"}
			if err := s.Put(context.Background(), obj, iotest.HalfReader(bytes.NewReader(data))); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, key); !bytes.Equal(got, data) {
				t.Fatalf("stored %d bytes that differ from the %d sent", len(got), len(data))
			}
			attrs, err := e.client.GetObjectAttributes(context.Background(), &s3.GetObjectAttributesInput{
				Bucket: &e.bucket, Key: &key,
				ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize},
			})
			if err != nil {
				t.Fatal(err)
			}
			if attrs.Checksum == nil || aws.ToString(attrs.Checksum.ChecksumSHA256) == "" {
				t.Error("no SHA-256 checksum recorded")
			}
			if aws.ToInt64(attrs.ObjectSize) != int64(c.size) {
				t.Errorf("size %d", aws.ToInt64(attrs.ObjectSize))
			}
			// A multipart object's SHA-256 is composite: "<base64>-<parts>".
			h, err := e.head(key)
			if err != nil {
				t.Fatal(err)
			}
			sum := aws.ToString(h.ChecksumSHA256)
			if c.parts == 0 && strings.Contains(sum, "-") {
				t.Errorf("checksum %q: a multipart upload, want a single PutObject", sum)
			}
			if c.parts > 0 && !strings.HasSuffix(sum, fmt.Sprintf("-%d", c.parts)) {
				t.Errorf("checksum %q, want a composite SHA-256 of %d parts", sum, c.parts)
			}
			if open := e.openUploads(t, key); len(open) != 0 {
				t.Errorf("uploads left open: %v", open)
			}
		})
	}
}

// failAfter yields r, then fails with err; before failing it records whether a multipart
// upload was open for key, so the test knows there was one to abort.
type failAfter struct {
	r       io.Reader
	err     error
	sawOpen func() bool
	open    bool
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		f.open = f.sawOpen()
		return n, f.err
	}
	return n, err
}

func TestMinIOUnknownSizeFailuresLeaveNothing(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize, Concurrency: 2})
	boom := errors.New("pg_dump: error: connection to server lost")
	data := source(51, 23*mib)
	for i, c := range []struct {
		name     string
		upTo     int
		wantOpen bool // an upload was open when the source failed
	}{
		{"within the first part", 1000, false},
		{"midway", 17 * mib, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("unknown-fail-%d", i)
			r := &failAfter{r: bytes.NewReader(data[:c.upTo]), err: boom, sawOpen: func() bool { return len(e.openUploads(t, key)) > 0 }}
			err := s.Put(context.Background(), store.Object{Key: key, Size: store.UnknownSize}, r)
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the source's", err)
			}
			if r.open != c.wantOpen {
				t.Fatalf("upload open when the source failed: %v, want %v", r.open, c.wantOpen)
			}
			e.assertNothingLeft(t, key)
			if open := e.openUploads(t, key); len(open) != 0 {
				t.Errorf("uploads left open: %v", open)
			}
		})
	}
	t.Run("cancelled midway", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		key := "unknown-cancelled"
		var open bool
		r := io.MultiReader(bytes.NewReader(data[:16*mib]), readFunc(func([]byte) (int, error) {
			open = len(e.openUploads(t, key)) > 0
			cancel()
			return 0, io.EOF
		}), bytes.NewReader(data[16*mib:]))
		err := s.Put(ctx, store.Object{Key: key, Size: store.UnknownSize}, r)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if !open {
			t.Fatal("no upload was open when the context was cancelled")
		}
		e.assertNothingLeft(t, key)
		if open := e.openUploads(t, key); len(open) != 0 {
			t.Errorf("uploads left open: %v", open)
		}
	})
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func TestMinIOUnknownSizeExistingKeyIsKept(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{PartSize: MinPartSize})
	ctx := context.Background()
	original := source(52, 1000)
	if err := s.Put(ctx, store.Object{Key: "k", Size: store.UnknownSize}, bytes.NewReader(original)); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{2000, 12 * mib} {
		err := s.Put(ctx, store.Object{Key: "k", Size: store.UnknownSize}, bytes.NewReader(source(53, size)))
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: err = %v, want ErrExists", size, err)
		}
		if got := e.get(t, "k"); !bytes.Equal(got, original) {
			t.Fatalf("size %d: original replaced", size)
		}
		if open := e.openUploads(t, "k"); len(open) != 0 {
			t.Fatalf("size %d: uploads left open: %v", size, open)
		}
	}
}

// Tags are set by the request that creates the object: PutObject for a small object,
// CreateMultipartUpload for a big one and for one of unknown size. MarkerExists finds exactly
// the key asked for, not a longer one beginning with it.
func TestMinIOTagsAndMarkers(t *testing.T) {
	e := startMinIO(t)
	s := e.store(Options{Prefix: "pg", PartSize: MinPartSize})
	ctx := context.Background()
	for name, c := range map[string]struct {
		size int64
		n    int
	}{"single": {300 << 10, 300 << 10}, "multipart": {12 << 20, 12 << 20}, "unknown size": {store.UnknownSize, 11 << 20}} {
		key := "shop/" + strings.ReplaceAll(name, " ", "-") + ".dump"
		err := s.Put(ctx, store.Object{Key: key, Size: c.size, Tags: map[string]string{"retention": "monthly"}}, bytes.NewReader(source(7, c.n)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := e.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &e.bucket, Key: aws.String("pg/" + key)})
		if err != nil || len(out.TagSet) != 1 || aws.ToString(out.TagSet[0].Key) != "retention" || aws.ToString(out.TagSet[0].Value) != "monthly" {
			t.Errorf("%s: tags %+v, %v; want retention=monthly", name, out, err)
		}
	}
	marker := "_pgoffsite-retention/shop/DATABASE/monthly/2026-11"
	if ok, err := s.MarkerExists(ctx, marker); ok || err != nil {
		t.Errorf("before: %v %v", ok, err)
	}
	if err := s.Put(ctx, store.Object{Key: marker + "x", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkerExists(ctx, marker); ok || err != nil {
		t.Errorf("a longer key counted as the marker: %v %v", ok, err)
	}
	if err := s.Put(ctx, store.Object{Key: marker, Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.MarkerExists(ctx, marker); !ok || err != nil {
		t.Errorf("after: %v %v", ok, err)
	}
}
