package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// stallWatch is a log writer that hands each stall warning about a request whose name starts
// with prefix to the test (as that name) and waits for the test's go-ahead: the warning is
// written before the request is cancelled, so what the test does meanwhile (remove a toxic)
// happens before any retry or abort.
type stallWatch struct {
	prefix string
	seen   chan string
	ack    chan struct{}
	mu     sync.Mutex
	all    bytes.Buffer
}

func newStallWatch(prefix string) *stallWatch {
	return &stallWatch{prefix: prefix, seen: make(chan string), ack: make(chan struct{})}
}

var requestField = regexp.MustCompile(`"request":"([^"]*)"`)

func (w *stallWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.all.Write(p)
	w.mu.Unlock()
	if m := requestField.FindSubmatch(p); m != nil && strings.HasPrefix(string(m[1]), w.prefix) {
		select {
		case w.seen <- string(m[1]):
			<-w.ack
		case <-time.After(30 * time.Second): // the test has gone: never hold the request forever
		}
	}
	return len(p), nil
}

// drain lets every later warning through until stop is closed.
func (w *stallWatch) drain(stop <-chan struct{}) {
	for {
		select {
		case <-w.seen:
			w.ack <- struct{}{}
		case <-stop:
			return
		}
	}
}

func (w *stallWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// gatedSource yields data, then, before it reports the end (which lets the last part go), runs
// gate once.
type gatedSource struct {
	data []byte
	off  int
	gate func()
	once sync.Once
}

func (g *gatedSource) Read(p []byte) (int, error) {
	if g.off == len(g.data) {
		g.once.Do(g.gate)
		return 0, io.EOF
	}
	n := copy(p, g.data[g.off:])
	g.off += n
	return n, nil
}

// stallCase uploads a two-part object through Toxiproxy with the production client; once part 1
// is stored, S3's answers stop coming (a timeout toxic with timeout 0 drops them and keeps the
// connection open), so part 2's UploadPart (and part 1's, if its answer was still on the way)
// is never answered.
type stallCase struct {
	e     *minioEnv
	proxy *testenv.Proxy
	key   string
	data  []byte
	toxic string
}

func newStallCase(t *testing.T, key string) *stallCase {
	e := startMinIO(t)
	x := testenv.StartToxiproxy(t)
	return &stallCase{e: e, proxy: x.Proxy(t, strings.TrimPrefix(e.m.Endpoint, "http://")), key: key, data: source(41, MinPartSize+1*mib)}
}

func (c *stallCase) client(t *testing.T, attempts int) *s3.Client {
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://"+c.proxy.Listen)
	t.Setenv("AWS_ACCESS_KEY_ID", c.e.m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.e.m.SecretKey)
	client, err := NewClient(context.Background(), ClientOptions{Region: c.e.m.Region, ForcePathStyle: true,
		Stall: stall.Options{Idle: 500 * time.Millisecond, Header: time.Second}, MaxAttempts: attempts})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// partStored reports whether part 1 of the key's open upload is in MinIO (asked directly).
func (c *stallCase) partStored(ctx context.Context) bool {
	ups, err := c.e.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &c.e.bucket, Prefix: &c.key})
	if err != nil || len(ups.Uploads) != 1 {
		return false
	}
	parts, err := c.e.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &c.e.bucket, Key: &c.key, UploadId: ups.Uploads[0].UploadId})
	return err == nil && len(parts.Parts) == 1
}

// put runs Put in the background; the toxic goes on once part 1 is stored, before part 2 starts.
func (c *stallCase) put(t *testing.T, client *s3.Client, log *stallWatch) <-chan error {
	s := New(client, Options{Bucket: c.e.bucket, PartSize: MinPartSize, Concurrency: 1})
	ctx := zerolog.New(log).WithContext(t.Context())
	toxicOn := make(chan string, 1)
	src := &gatedSource{data: c.data, gate: func() {
		for deadline := time.Now().Add(20 * time.Second); !c.partStored(ctx) && time.Now().Before(deadline); {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		// Added from this goroutine, so that part 2 cannot start before it is in place.
		toxicOn <- c.proxy.AddToxic(t, "timeout", "downstream", map[string]any{"timeout": 0})
	}}
	done := make(chan error, 1)
	go func() {
		done <- s.Put(ctx, store.Object{Key: c.key, Size: int64(len(c.data))}, src)
	}()
	select {
	case c.toxic = <-toxicOn:
	case err := <-done:
		t.Fatalf("Put ended before part 2: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("part 1 was never stored")
	}
	return done
}

func (c *stallCase) objectExists(t *testing.T) bool {
	_, err := c.e.head(c.key)
	var nf *types.NotFound
	if err != nil && !errors.As(err, &nf) {
		t.Fatalf("HeadObject: %v", err)
	}
	return err == nil
}

// S3 stops answering an UploadPart with the connection left open: the request is cancelled and
// retried, the upload completes, a warning names the part and the host, and nothing stays open.
func TestMinIOStalledPartIsRetried(t *testing.T) {
	c := newStallCase(t, "stall/retried.dump")
	log := newStallWatch("upload part ")
	began := time.Now()
	done := c.put(t, c.client(t, 0), log)
	select {
	case req := <-log.seen:
		if want := " of s3://" + c.e.bucket + "/" + c.key; !strings.HasSuffix(req, want) {
			t.Errorf("the warning names %q, want upload part N%s", req, want)
		}
		c.proxy.RemoveToxic(t, c.toxic) // S3 answers again
		log.ack <- struct{}{}
	case err := <-done:
		t.Fatalf("Put ended without a stall: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled UploadPart was never cancelled")
	}
	stop := make(chan struct{})
	defer close(stop)
	go log.drain(stop) // later warnings (another attempt that met the toxic) pass
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Put: %v\nlog:\n%s", err, log)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Put did not finish after S3 answered again")
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("Put took %s", took)
	}
	out := log.String()
	for _, want := range []string{`"level":"warn"`, `"host":"` + c.proxy.Listen + `"`, `"stalled":"response headers"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the warning lacks %s: %s", want, out)
		}
	}
	if got := c.e.get(t, c.key); !bytes.Equal(got, c.data) {
		t.Fatal("the stored object differs from the source")
	}
	if open := c.e.m.IncompleteUploadsOf(t, c.e.bucket, c.key); len(open) != 0 {
		t.Fatalf("multipart uploads left open: %v", open)
	}
}

// An UploadPart that stalls on every attempt fails the Put in bounded time with an error that
// says which part stalled and how; the upload is aborted.
func TestMinIOPartStalledOnEveryAttempt(t *testing.T) {
	c := newStallCase(t, "stall/given-up.dump")
	log := newStallWatch("upload part ")
	began := time.Now()
	done := c.put(t, c.client(t, 2), log)
	stalls := map[string]int{}
	var failed string // the first part whose attempts are all used up
	for failed == "" {
		select {
		case req := <-log.seen:
			if stalls[req]++; stalls[req] == 2 { // its last attempt: S3 answers again in time for the abort
				failed = req
				c.proxy.RemoveToxic(t, c.toxic)
			}
			log.ack <- struct{}{}
		case err := <-done:
			t.Fatalf("Put ended after stalls %v: %v", stalls, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("after stalls %v, no more came", stalls)
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go log.drain(stop)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Put did not give up")
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("Put took %s", took)
	}
	msg := fmt.Sprint(err)
	for _, want := range []string{failed + ":", "stalled: " + c.proxy.Listen + " sent no response headers", "attempts, 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "abort") {
		t.Errorf("the abort failed: %s", msg)
	}
	if c.objectExists(t) {
		t.Error("an object was published")
	}
	if open := c.e.m.IncompleteUploadsOf(t, c.e.bucket, c.key); len(open) != 0 {
		t.Fatalf("multipart uploads left open: %v", open)
	}
}
