// Package gcsstore is the gs:// destination: a Google Cloud Storage bucket through its JSON
// API, written with resumable uploads that never replace an object (a does-not-exist
// precondition) and carry their CRC32C, read back by a reader's credentials.
package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// callTimeout bounds each call that is not an upload's body: a listing page, a lookup, the
// opening of a read.
const callTimeout = 2 * time.Minute

// chunkTimeout bounds one chunk's request of a resumable upload; chunkRetryDeadline bounds the
// retries of one chunk. A stalled connection fails the chunk instead of hanging the upload.
const (
	chunkTimeout       = 2 * time.Minute
	chunkRetryDeadline = 5 * time.Minute
)

// maxAttempts bounds the tries of each request of an upload, the session's start included,
// which the library would otherwise retry for as long as the run's context lasts (a 502 for
// hours): about two and a half minutes of its backoff.
const maxAttempts = 10

// Options open a bucket.
type Options struct {
	Bucket string
	Prefix string
	// Endpoint is an emulator's or a private endpoint's URL (http://127.0.0.1:PORT); "" =
	// Google's, or STORAGE_EMULATOR_HOST's when that is set (the client library reads it).
	Endpoint string
	// CredentialsJSON is a service account key's JSON; empty = Google's default credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, the metadata server), or none with an emulator.
	CredentialsJSON []byte
	// ChunkSize is the size of an upload's chunks: the one buffer an upload holds.
	ChunkSize int64
	// Stall are the silences tolerated on a connection (stall.Options' defaults when zero).
	Stall stall.Options
	// RetryDeadline bounds the retries of one chunk (chunkRetryDeadline when zero).
	RetryDeadline time.Duration
	// Retention (RETENTION) gives an object tagged retention=CLASS its expiry date as its
	// Custom-Time: Google's lifecycle cannot match metadata, but can delete what is past its
	// Custom-Time (setup-bucket's rule).
	Retention retention.Policy
}

// Store writes archives to, and reads them from, one bucket under a prefix.
type Store struct {
	client    *storage.Client
	http      *http.Client
	bucket    *storage.BucketHandle
	name      string
	prefix    string // "" or ending in "/"
	chunkSize int
	retry     time.Duration
	retention retention.Policy
}

// Open makes the client; it sends no request.
func Open(ctx context.Context, o Options) (*Store, error) {
	// The library's messages may quote what they could not parse: say only what failed.
	noClient := fmt.Errorf("gs://%s: cannot make a Google Cloud Storage client from the credentials given", o.Bucket)
	hc, err := httpClient(ctx, o)
	if err != nil {
		return nil, noClient
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if o.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(o.Endpoint+"/storage/v1/"))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, noClient
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	chunk := int(o.ChunkSize)
	if chunk <= 0 {
		chunk = googleapi.DefaultUploadChunkSize
	}
	// The library sends chunks in multiples of 256 KiB.
	chunk = max(googleapi.MinUploadChunkSize, chunk/googleapi.MinUploadChunkSize*googleapi.MinUploadChunkSize)
	retry := o.RetryDeadline
	if retry <= 0 {
		retry = chunkRetryDeadline
	}
	return &Store{client: client, http: hc, bucket: client.Bucket(o.Bucket), name: o.Bucket, prefix: prefix, chunkSize: chunk, retry: retry, retention: o.Retention}, nil
}

// Close closes the client's connections.
func (s *Store) Close() error { return s.client.Close() }

// Location names key: gs://bucket/prefix/key.
func (s *Store) Location(key string) string { return "gs://" + s.name + "/" + s.prefix + key }

// WriterCaps are what the uploader's credentials (roles/storage.objectCreator) may do besides
// creating objects: nothing — not read, look up, replace or delete. A killed upload leaves an
// unfinished resumable session, which is invisible, holds no object and is dropped by Google
// after a week: nothing stale to remove.
func (s *Store) WriterCaps() store.Caps { return store.Caps{Close: s.Close} }

// ReaderCaps are what the reader's credentials may do: read (roles/storage.objectViewer), and
// keep the verification records, which `pgoffsite policy --reader` grants on the names ending
// .verified.json alone (roles/storage.objectUser under an IAM condition).
func (s *Store) ReaderCaps() store.Caps { return store.Caps{Reader: s, Records: s, Close: s.Close} }

// Replace writes a small record at key, replacing the one there, within callTimeout.
func (s *Store) Replace(ctx context.Context, key string, body []byte) error {
	ctx, d := withDeadline(ctx)
	defer d.stop()
	w := s.bucket.Object(s.prefix + key).NewWriter(stall.WithLabel(ctx, "put "+s.Location(key)))
	w.ContentType = "application/json"
	w.ChunkSize = 0 // one request: a record is small
	if _, err := w.Write(body); err != nil {
		w.Close()
		return scrubbed(fmt.Errorf("put %s: %w", s.Location(key), d.explain(err)))
	}
	if err := w.Close(); err != nil {
		return scrubbed(fmt.Errorf("put %s: %w", s.Location(key), d.explain(err)))
	}
	return nil
}

// Put uploads r as obj.Key: a resumable upload in chunks of the chunk size, created only if no
// object is there (ifGenerationMatch=0: an existing one is ErrExists), its CRC32C sent with the
// last chunk for Google to check and compared with what Google stored. The object appears only
// when the last chunk is accepted: on any error before, the upload is abandoned and its session
// cancelled (a DELETE), so nothing of it is stored.
func (s *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	loc := s.Location(obj.Key)
	if obj.Size < store.UnknownSize {
		return fmt.Errorf("put %s: invalid size %d", loc, obj.Size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", loc, err)
	}
	ctx, sess := withSession(stall.WithLabel(ctx, "upload "+loc))
	stored, err := s.put(ctx, obj, r)
	if err == nil {
		return nil
	}
	uri := sess.get()
	if stored || uri == "" || errors.Is(err, store.ErrExists) {
		return scrubbed(fmt.Errorf("put %s: %w", loc, err))
	}
	if cerr := s.cancelSession(uri); cerr != nil {
		return scrubbed(fmt.Errorf("put %s: %w (the upload's session could not be cancelled: %v; it holds no object and Google drops it after a week)", loc, err, cerr))
	}
	return scrubbed(fmt.Errorf("put %s: %w (the upload's session is cancelled: nothing is stored)", loc, err))
}

// scrubbedError is an error said without any URL's query: the library quotes the session's
// URI, whose upload_id lets anyone holding it write the upload. It matches what the error
// matched among the errors callers test for, and nothing else, so that no caller unwraps the
// raw message.
type scrubbedError struct {
	msg string
	is  []error
}

func (e *scrubbedError) Error() string   { return e.msg }
func (e *scrubbedError) Unwrap() []error { return e.is }

func scrubbed(err error) error {
	e := &scrubbedError{msg: scrub.String(err.Error())}
	for _, sentinel := range []error{context.Canceled, context.DeadlineExceeded, store.ErrExists, store.ErrSizeMismatch} {
		if errors.Is(err, sentinel) {
			e.is = append(e.is, sentinel)
		}
	}
	if gerr := (*googleapi.Error)(nil); errors.As(err, &gerr) {
		e.is = append(e.is, gerr) // what Google answered, for check's explanations
	}
	return e
}

// put is Put's upload, its errors said without the location; stored says the upload ended,
// whatever the error.
func (s *Store) put(ctx context.Context, obj store.Object, r io.Reader) (stored bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // cancelling before Close abandons the upload
	w := s.bucket.Object(s.prefix + obj.Key).If(storage.Conditions{DoesNotExist: true}).
		Retryer(storage.WithMaxAttempts(maxAttempts)).NewWriter(ctx)
	w.ChunkSize = s.chunkSize
	w.ChunkTransferTimeout = chunkTimeout
	w.ChunkRetryDeadline = s.retry
	w.ContentType = obj.ContentType
	w.Metadata = obj.Tags
	if keep, ok := s.retention.Keep(retention.Class(obj.Tags[retention.TagKey])); ok {
		// Set with the object and never changed: the uploader may not update an object.
		w.CustomTime = time.Now().UTC().AddDate(0, 0, keep.Days())
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	src := store.ContextReader(ctx, r)
	if obj.Size >= 0 {
		src = io.LimitReader(src, obj.Size+1) // one byte more shows a longer source
	}
	n, err := io.Copy(io.MultiWriter(w, crc), src)
	if err == nil && obj.Size >= 0 && n != obj.Size {
		err = fmt.Errorf("%w: read %d bytes, announced %d", store.ErrSizeMismatch, n, obj.Size)
	}
	if err != nil {
		cancel()
		w.Close()
		return false, err
	}
	if err := w.Close(); err != nil {
		return false, classify(ctx, err)
	}
	if got, want := w.Attrs().CRC32C, crc.Sum32(); got != want {
		return true, fmt.Errorf("Google Cloud Storage stored CRC32C %08x, the bytes sent have %08x", got, want)
	}
	return true, nil
}

// classify turns a failed precondition into ErrExists and a cancelled upload into the
// context's error.
func classify(ctx context.Context, err error) error {
	var gerr *googleapi.Error
	switch {
	case errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed:
		return fmt.Errorf("%w (the bucket refused to replace it)", store.ErrExists)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

// List describes the objects under prefix, sorted by key (Google lists in key order). Each
// page of the listing is bounded by callTimeout.
func (s *Store) List(ctx context.Context, prefix string) (store.Listing, error) {
	ctx, d := withDeadline(ctx)
	defer d.stop()
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: s.prefix + prefix})
	var objs []store.Info
	for {
		d.restart()
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return store.Listing{}, fmt.Errorf("list %s: %w", s.Location(prefix), d.explain(err))
		}
		objs = append(objs, store.Info{Key: strings.TrimPrefix(attrs.Name, s.prefix), Size: attrs.Size,
			Modified: attrs.Created, ETag: attrs.Etag})
	}
	store.SortInfos(objs)
	return store.Listing{Objects: objs}, nil
}

// Open streams the object at key. Opening it is bounded by callTimeout; the body then streams
// under ctx.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	ctx, d := withDeadline(ctx)
	rd, err := s.bucket.Object(s.prefix + key).NewReader(ctx)
	if err != nil {
		d.stop()
		return nil, 0, fmt.Errorf("open %s: %w", s.Location(key), d.explain(err))
	}
	d.timer.Stop()
	return cancelOnClose{rd, d.stop}, rd.Attrs.Size, nil
}

// deadline cancels a context when a call has waited callTimeout for its answer.
type deadline struct {
	timer  *time.Timer
	cancel context.CancelFunc
	fired  atomic.Bool
}

func withDeadline(ctx context.Context) (context.Context, *deadline) {
	ctx, cancel := context.WithCancel(ctx)
	d := &deadline{cancel: cancel}
	d.timer = time.AfterFunc(callTimeout, func() { d.fired.Store(true); cancel() })
	return ctx, d
}

// restart gives the next call its own callTimeout.
func (d *deadline) restart() { d.timer.Reset(callTimeout) }

func (d *deadline) stop() {
	d.timer.Stop()
	d.cancel()
}

// explain says that err is the deadline's doing, when it is.
func (d *deadline) explain(err error) error {
	if d.fired.Load() {
		return fmt.Errorf("no answer within %s", callTimeout)
	}
	return err
}

type cancelOnClose struct {
	*storage.Reader
	cancel func()
}

func (c cancelOnClose) Close() error {
	defer c.cancel()
	return c.Reader.Close()
}
