// Package s3store implements store.Store on S3 and S3-compatible stores: a streaming,
// checksummed multipart upload with bounded memory that never overwrites an existing object.
//
// It needs only s3:PutObject and s3:AbortMultipartUpload (s3:PutObjectTagging for tagged
// objects): it never reads or deletes, and lists only the retention markers (MarkerExists).
package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/pgoffsite/pgoffsite/internal/openuploads"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

var _ store.Store = (*Store)(nil)

const (
	mib                = 1 << 20
	MinPartSize        = 5 * mib // S3's minimum for every part but the last
	DefaultPartSize    = 8 * mib
	maxPartSize        = 5 << 30 // S3's maximum part size
	maxParts           = 10000   // S3's maximum number of parts
	DefaultConcurrency = 4

	// Short enough that a SIGTERM (SIGKILL follows 30 s later) still aborts and exits in time.
	abortTimeout = 10 * time.Second
	// createGrace is how long the request opening a multipart upload may still take once the
	// upload is cancelled: its answer names the upload to abort.
	createGrace = 10 * time.Second
	// CompleteMultipartUpload may answer 409 ConditionalRequestConflict while another conditional
	// write to the key is in progress; S3 documents retrying it.
	completeAttempts = 5
	// A marker lookup is one small request: a store that takes longer is not answering.
	markerTimeout = 15 * time.Second

	// An upload request that stalls is retried at most uploadStallRetries times, and its
	// answer is due within the silence limit of its bytes (S3 answers a part once it holds it,
	// and starts the answer to CompleteMultipartUpload at once, keeping it alive with spaces):
	// a store that stops answering fails the upload within about three times 30 s and the
	// back-off between (under two minutes), and the other copies of the archive go on. Other
	// failures (a refused connection, a 503) keep the client's attempts (10, with back-off up
	// to 20 s), so that an outage of seconds is still ridden out.
	uploadStallRetries = 2
	uploadAnswer       = stall.DefaultIdle
)

// Options configure a Store.
type Options struct {
	Bucket       string
	Prefix       string // without leading or trailing slash; object keys are Prefix + "/" + obj.Key
	StorageClass string // "" lets the bucket decide (STANDARD on AWS)
	SSE          string // "", "AES256" or "aws:kms"
	SSEKMSKeyID  string // with SSE "aws:kms"; "" means the AWS-managed key
	// PartSize is the size of each part: default 8 MiB, at least 5 MiB. For a known size it is
	// grown so the object never needs more than 10,000 parts; for an unknown size it follows
	// the schedule of unknownPartSize.
	PartSize int64
	// Concurrency is the number of parts in flight, default 4. The part buffers take
	// (Concurrency+1) × PartSize; an upload of unknown size keeps to that as its parts grow by
	// lowering the parts in flight (see Put).
	Concurrency int
	// Checksum is what each request carries for the store to check; "" is ChecksumAuto.
	Checksum Checksum
}

// Store writes objects into one bucket under a prefix.
type Store struct {
	client        *s3.Client
	o             Options
	noConditional atomic.Bool   // the store rejected If-None-Match; see ConditionalWritesUnsupported
	sums          checksums     // what requests carry now
	retryBase     time.Duration // first back-off before retrying a conflicting Complete
	answerWithin  time.Duration // uploadAnswer; a field so that tests need not wait for it

	// The unknown-size schedule: part sizes double every growEvery parts, at most maxParts
	// parts. Fields, not constants, so tests can reach the schedule's ends with small objects.
	growEvery int
	maxParts  int
	poolHook  func(*partPool) // when set, sees the buffer pool of each multipart upload
}

// New returns a Store writing with client. Zero or out-of-range PartSize and Concurrency take
// their defaults.
func New(client *s3.Client, o Options) *Store {
	o.Prefix = strings.Trim(o.Prefix, "/")
	switch {
	case o.PartSize == 0:
		o.PartSize = DefaultPartSize
	case o.PartSize < MinPartSize:
		o.PartSize = MinPartSize
	case o.PartSize > maxPartSize:
		o.PartSize = maxPartSize
	}
	if o.Concurrency < 1 {
		o.Concurrency = DefaultConcurrency
	}
	return &Store{client: client, o: o, sums: checksums{mode: o.Checksum}, retryBase: 250 * time.Millisecond, answerWithin: uploadAnswer, growEvery: growEvery, maxParts: maxParts}
}

// ConditionalWritesUnsupported reports whether the store rejected If-None-Match on a write, so
// that Put fell back to unconditional writes and can no longer refuse to overwrite an object.
func (s *Store) ConditionalWritesUnsupported() bool { return s.noConditional.Load() }

func (s *Store) key(k string) string {
	if s.o.Prefix == "" {
		return k
	}
	return s.o.Prefix + "/" + k
}

// Location returns s3://bucket/prefix/key.
func (s *Store) Location(key string) string {
	return "s3://" + s.o.Bucket + "/" + s.key(key)
}

// partSize returns the part size for an object of size bytes: the configured one, grown (in whole
// MiB) when the object would otherwise need more than maxParts parts.
func partSize(size, configured int64) int64 {
	ps := configured
	if size > ps*maxParts {
		ps = (size + maxParts - 1) / maxParts
		ps = (ps + mib - 1) / mib * mib
	}
	return ps
}

// Put uploads the bytes of r: exactly obj.Size of them, or for store.UnknownSize whatever r
// yields up to io.EOF. An object smaller than one part goes in a single PutObject; a larger one
// in a multipart upload with up to Concurrency parts in flight. Every request carries the
// checksum of its body that Options.Checksum names, which the store verifies. The final write is conditional (If-None-Match: *), so
// an existing object is never replaced. On success every byte r yielded is in the object.
//
// With an unknown size the part size cannot be chosen from the size, so it grows as the upload
// goes (unknownPartSize): the first growEvery parts keep PartSize, and 10,000 parts still hold
// S3's largest object. The buffers keep within the (Concurrency+1) × PartSize the Options
// allow: once parts have grown, fewer are in flight. Only when one part alone is larger than
// that does the upload hold more: that one part, the least a part sent with its checksum up
// front needs. With the defaults (4 × 8 MiB, 40 MiB of buffers): 4 parts in flight for the
// first 7 GiB, then 16 MiB parts, 2 buffers, up to 21 GiB, then 32 MiB parts one at a time up
// to 49 GiB; past that one part alone, 64 MiB, doubling every 900 parts (to 5 GiB only near
// 5 TiB). A larger Concurrency × PartSize keeps more parts in flight for longer.
func (s *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	// The SDK's errors name the request's URL: the key is in the message already.
	return scrub.StripURL(s.put(ctx, obj, r))
}

func (s *Store) put(ctx context.Context, obj store.Object, r io.Reader) error {
	loc := s.Location(obj.Key)
	if obj.Key == "" {
		return fmt.Errorf("s3: put object %s: empty key", loc)
	}
	if obj.Size < 0 && obj.Size != store.UnknownSize {
		return fmt.Errorf("s3: put object %s: negative size %d", loc, obj.Size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: put object %s: %w", loc, err)
	}
	ctx = stall.AtMost(ctx, stall.Options{Header: s.answerWithin})
	r = store.ContextReader(ctx, r)
	if obj.Size == store.UnknownSize {
		return s.putUnknown(ctx, obj, r, loc)
	}
	ps := partSize(obj.Size, s.o.PartSize)
	if ps > maxPartSize {
		return fmt.Errorf("s3: put object %s: %d bytes exceed what %d parts of at most 5 GiB can hold", loc, obj.Size, maxParts)
	}
	if obj.Size < ps {
		return s.putSingle(ctx, obj, r, loc)
	}
	nparts := int((obj.Size + ps - 1) / ps)
	return s.putMultipart(ctx, obj, r, loc, plan{
		nparts: nparts,
		part:   func(i int) int64 { return min(ps, obj.Size-int64(i)*ps) },
		budget: int64(s.o.Concurrency+1) * ps,
	})
}

// growEvery is how many parts an upload of unknown size sends before its part size doubles.
// With the 5 MiB minimum, 900 is about the most that still lets 10,000 parts reach 5 TiB
// (1,000 would stop at 4.9 TiB); TestUnknownSizeScheduleReachesFiveTiB sums it.
const growEvery = 900

// maxObjectSize is S3's largest object, 5 TiB.
const maxObjectSize = 5 << 40

// unknownPartSize is the size of part i (from 0) of an upload of unknown size: base for the
// first growEvery parts, doubled after every further growEvery, at most 5 GiB. Growth is late
// and then fast, so ordinary objects keep the configured part size and its full concurrency.
func unknownPartSize(i, growEvery int, base int64) int64 {
	ps := base
	for d := i / growEvery; d > 0 && ps < maxPartSize; d-- {
		ps *= 2
	}
	return min(ps, maxPartSize)
}

// unknownCapacity is how many bytes the schedule holds in nparts parts.
func unknownCapacity(nparts, growEvery int, base int64) int64 {
	var total int64
	for i := 0; i < nparts; i++ {
		total += unknownPartSize(i, growEvery, base)
	}
	return total
}

// putUnknown reads the first part; a stream that ends within it goes in a single PutObject,
// a longer one in a multipart upload that runs until io.EOF.
func (s *Store) putUnknown(ctx context.Context, obj store.Object, r io.Reader, loc string) error {
	base := s.o.PartSize
	p := plan{
		nparts: s.maxParts,
		part:   func(i int) int64 { return unknownPartSize(i, s.growEvery, base) },
		budget: int64(s.o.Concurrency+1) * base,
		open:   true,
	}
	buf := make([]byte, base)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return s.putBytes(ctx, obj, buf[:n], loc)
	case err != nil:
		return fmt.Errorf("s3: put object %s: %w", loc, sourceError(ctx, err, int64(n), obj.Size))
	}
	// A full first part: one byte more decides between a single write and a multipart upload.
	var one [1]byte
	m, err := io.ReadAtLeast(r, one[:], 1)
	switch {
	case m == 0 && err == io.EOF:
		return s.putBytes(ctx, obj, buf, loc)
	case m == 0:
		return fmt.Errorf("s3: put object %s: %w", loc, sourceError(ctx, err, int64(n), obj.Size))
	}
	p.first = buf
	return s.putMultipart(ctx, obj, io.MultiReader(bytes.NewReader(one[:]), r), loc, p)
}

func (s *Store) putSingle(ctx context.Context, obj store.Object, r io.Reader, loc string) error {
	buf := make([]byte, obj.Size)
	n, err := io.ReadFull(r, buf)
	if err == nil {
		err = expectEOF(r, obj.Size)
	}
	if err != nil {
		return fmt.Errorf("s3: put object %s: %w", loc, sourceError(ctx, err, int64(n), obj.Size))
	}
	return s.putBytes(ctx, obj, buf, loc)
}

// putBytes writes buf, all of the object, in one conditional PutObject.
func (s *Store) putBytes(ctx context.Context, obj store.Object, buf []byte, loc string) error {
	sha := sha256.Sum256(buf)
	in := &s3.PutObjectInput{
		Bucket:        &s.o.Bucket,
		Key:           aws.String(s.key(obj.Key)),
		ContentLength: aws.Int64(int64(len(buf))),
	}
	in.ContentType, in.StorageClass, in.ServerSideEncryption, in.SSEKMSKeyId, in.Tagging = s.attributes(obj)
	put := func(conditional bool) error {
		return s.withChecksum(ctx, loc, func(c Checksum) error {
			sum := sumOf(c, buf, sha)
			in.ChecksumAlgorithm, in.ChecksumSHA256, in.ChecksumCRC32C, in.ContentMD5 = sum.algo, sum.sha256, sum.crc32c, sum.md5
			in.Body = bytes.NewReader(buf)
			in.IfNoneMatch = nil
			if conditional {
				in.IfNoneMatch = aws.String("*")
			}
			_, err := s.client.PutObject(uploadRequest(ctx, "put object "+loc), in, withPayloadHash(sha))
			return err
		})
	}
	if err := s.conditionally(put); err != nil {
		if s3err.Of(err) == s3err.PreconditionFailed {
			err = store.ErrExists
		}
		return fmt.Errorf("s3: put object %s: %w", loc, err)
	}
	return nil
}

// ChecksumRefusedMessage is the warning logged once per destination when auto falls back to MD5.
const ChecksumRefusedMessage = "the store refuses the checksum headers (x-amz-checksum-*): uploads to it carry Content-MD5 for the rest of this run"

// withChecksum sends a request with the checksum requests carry now. Under auto, a store that
// refuses the checksum headers makes the store fall back to Content-MD5 for the rest of the run
// (warned once) and the request is sent again; under an explicit strong checksum the refusal
// names the parameter that fixes it.
func (s *Store) withChecksum(ctx context.Context, loc string, send func(Checksum) error) error {
	c := s.sums.current()
	err := send(c)
	if err == nil || !c.Strong() || !s3err.ChecksumRefused(err) {
		return err
	}
	if s.sums.mode != "" && s.sums.mode != ChecksumAuto {
		return fmt.Errorf("%w; the store refuses %s's checksum headers: set %smd5 on this destination in ARCHIVE_URL (Content-MD5, which every S3 implementation honours)", err, ChecksumParam+string(c), ChecksumParam)
	}
	if s.sums.fallBack() {
		zerolog.Ctx(ctx).Warn().Str("destination", loc).
			Msg(ChecksumRefusedMessage + "; add " + ChecksumParam + "md5 to this destination in ARCHIVE_URL to send it from the start")
	}
	return send(s.sums.current())
}

// conditionally runs write with If-None-Match, unless the store is known to reject it; a store
// that rejects it gets the write once more without, and is remembered once that works.
func (s *Store) conditionally(write func(conditional bool) error) error {
	if s.noConditional.Load() {
		return write(false)
	}
	err := write(true)
	if err == nil || !s3err.ConditionalUnsupported(err) {
		return err
	}
	if err2 := write(false); err2 != nil {
		if s3err.ConditionalUnsupported(err2) {
			return err // the header was not what the store objected to
		}
		return err2
	}
	s.noConditional.Store(true)
	return nil
}

// tagging is the x-amz-tagging header for tags (URL query encoding), nil for none: the tags are
// set by the request that creates the object, so no s3:PutObjectTagging call on an existing
// object (which would let stolen keys retag archives) is ever needed.
func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	v := url.Values{}
	for k, t := range tags {
		v.Set(k, t)
	}
	return aws.String(v.Encode())
}

// MarkerExists reports whether an object exists at key, by listing exactly that key: the
// uploader may not read (s3:GetObject), and without s3:ListBucket a HeadObject of a missing key
// answers 403, not 404, so existence is asked through a list request the uploader policy allows
// under the retention marker prefix alone (condition s3:prefix).
func (s *Store) MarkerExists(ctx context.Context, key string) (bool, error) {
	full := s.key(key)
	ctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	out, err := s.client.ListObjectsV2(stall.WithLabel(ctx, "look for "+s.Location(key)), &s3.ListObjectsV2Input{Bucket: &s.o.Bucket, Prefix: aws.String(full), MaxKeys: aws.Int32(1)})
	if err != nil {
		return false, fmt.Errorf("s3: look for %s: %w", s.Location(key), err)
	}
	for _, o := range out.Contents {
		if aws.ToString(o.Key) == full {
			return true, nil
		}
	}
	return false, nil
}

// plan describes the parts of a multipart upload.
type plan struct {
	nparts int               // the number of parts; with open, the most there may be
	part   func(i int) int64 // the size of part i (from 0); with open, its most
	budget int64             // the bytes the part buffers may take together
	open   bool              // the size is unknown: read until io.EOF
	first  []byte            // part 0, already read (open only), or nil
}

func (s *Store) putMultipart(ctx context.Context, obj store.Object, r io.Reader, loc string, p plan) error {
	key := s.key(obj.Key)
	parts := make([]types.CompletedPart, p.nparts)

	// uctx stops the parts in flight when reading fails; the group cancels it when a part fails.
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(uctx)
	g.SetLimit(s.o.Concurrency)

	// Concurrency buffers uploading plus one being filled, or fewer once parts have grown.
	pool := newPartPool(p.budget, s.o.Concurrency+1)
	if s.poolHook != nil {
		s.poolHook(pool)
	}
	if p.first != nil {
		pool.adopt(p.first)
	}

	var uploadID string
	var readErr error
	var read int64
	sent := 0
loop:
	for i := 0; gctx.Err() == nil && (p.open || i < p.nparts); i++ {
		var buf []byte
		last := !p.open && i == p.nparts-1
		if i == 0 && p.first != nil {
			buf = p.first
			read = int64(len(buf))
		} else {
			var one [1]byte
			if p.open {
				// One byte first: the stream may have ended on a part boundary, and a buffer
				// for the next (perhaps larger) part is made only for bytes that exist.
				n, err := io.ReadAtLeast(r, one[:], 1)
				switch {
				case n == 0 && err == io.EOF:
					break loop
				case n == 0:
					readErr = sourceError(ctx, err, read, obj.Size)
					break loop
				case i == p.nparts:
					readErr = fmt.Errorf("source yields more than the %d bytes %d parts hold: %w", read, p.nparts, errTooLarge)
					break loop
				}
			}
			var err error
			if buf, err = pool.get(gctx, p.part(i)); err != nil {
				break loop
			}
			off := 0
			if p.open {
				buf[0] = one[0]
				off = 1
			}
			n, err := io.ReadFull(r, buf[off:])
			read += int64(off + n)
			buf = buf[:off+n]
			switch {
			case p.open && (err == io.EOF || err == io.ErrUnexpectedEOF):
				last, err = true, nil
			case err == nil && last:
				err = expectEOF(r, obj.Size)
			}
			if err != nil {
				readErr = sourceError(ctx, err, read, obj.Size)
				break loop
			}
		}
		if gctx.Err() != nil {
			break loop
		}
		// Created only once a full part is in hand, so a source that fails at once leaves no upload.
		if uploadID == "" {
			var err error
			uploadID, err = s.create(uploadRequest(ctx, "create multipart upload "+loc), obj, key)
			if err != nil {
				return fmt.Errorf("s3: create multipart upload %s: %w", loc, err)
			}
			// Told to whoever watches this process's uploads (a coordinator of one-off dynos), which
			// aborts the upload should the process die without doing so itself.
			openuploads.Opened(ctx, loc, uploadID)
			zerolog.Ctx(ctx).Info().Str("upload", loc).Str("upload_id", uploadID).Msg(UploadOpenedMessage)
		}
		num := int32(i + 1)
		id := uploadID
		g.Go(func() error {
			defer pool.put(buf)
			p, err := s.uploadPart(uploadRequest(gctx, fmt.Sprintf("upload part %d of %s", num, loc)), key, id, num, buf)
			if err != nil {
				return fmt.Errorf("s3: upload part %d of %s: %w", num, loc, err)
			}
			parts[num-1] = p
			return nil
		})
		sent++
		if last {
			break loop
		}
	}
	if readErr != nil {
		cancel()
	}
	partErr := g.Wait()

	var err error
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("s3: put object %s: %w", loc, ctx.Err())
	case readErr != nil:
		err = fmt.Errorf("s3: put object %s: %w", loc, readErr)
	case partErr != nil:
		err = partErr
	default:
		err = s.complete(uploadRequest(ctx, "complete multipart upload "+loc), key, uploadID, parts[:sent], read)
		if err != nil {
			if s3err.Of(err) == s3err.PreconditionFailed {
				err = store.ErrExists
			}
			err = fmt.Errorf("s3: complete multipart upload %s: %w", loc, err)
		}
	}
	if err == nil {
		return nil
	}
	if uploadID != "" {
		if aerr := s.abort(stall.WithLabel(ctx, "abort multipart upload "+loc), key, uploadID); aerr != nil {
			return fmt.Errorf("%w; abort multipart upload %s also failed, its parts stay until the bucket's lifecycle rule removes incomplete uploads: %w", err, uploadID, aerr)
		}
	}
	return err
}

// errTooLarge reports a stream longer than the largest object a multipart upload can hold.
var errTooLarge = errors.New("object too large for S3")

// partPool hands out part buffers while the buffers alive stay within a budget of bytes: a
// buffer too small for the grown parts is let go when it comes back, and a new one is made only
// when it fits beside those still in use — or when none is, so that a part larger than the
// whole budget can still go, alone. The pool counts the buffers it holds; one it has let go is
// the garbage collector's to reclaim.
//
// get and adopt run on the reading goroutine only; put on any.
type partPool struct {
	budget int64
	free   chan []byte
	held   int64 // bytes in the buffers alive: being filled, uploading or in free
	peak   int64 // the most held at once
	alive  int   // the buffers alive
}

// newPartPool returns a pool for at most maxBuffers buffers alive at once (the budget divided
// by the smallest full part). free holds one more, for a short last part, so put never blocks.
func newPartPool(budget int64, maxBuffers int) *partPool {
	return &partPool{budget: budget, free: make(chan []byte, maxBuffers+1)}
}

// adopt counts buf, made by the caller, as one of the pool's.
func (p *partPool) adopt(buf []byte) { p.grow(int64(cap(buf))) }

func (p *partPool) grow(n int64) {
	p.held += n
	p.alive++
	p.peak = max(p.peak, p.held)
}

// get returns a buffer of size bytes, waiting for one to come back when a new one would not
// fit; it returns ctx's error when ctx ends first.
func (p *partPool) get(ctx context.Context, size int64) ([]byte, error) {
	for {
		var buf []byte
		select {
		case buf = <-p.free:
		default:
			if p.alive == 0 || p.held+size <= p.budget {
				p.grow(size)
				return make([]byte, size), nil
			}
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if int64(cap(buf)) >= size {
			return buf[:size], nil
		}
		p.held -= int64(cap(buf))
		p.alive--
	}
}

// put gives buf back for reuse.
func (p *partPool) put(buf []byte) { p.free <- buf[:cap(buf)] }

// attributes are what every new object carries, written whole or in parts: its content type,
// storage class, server-side encryption and tags; nil or empty where none is set.
func (s *Store) attributes(obj store.Object) (contentType *string, class types.StorageClass, sse types.ServerSideEncryption, kmsKey, tags *string) {
	if obj.ContentType != "" {
		contentType = aws.String(obj.ContentType)
	}
	if s.o.SSEKMSKeyID != "" {
		kmsKey = aws.String(s.o.SSEKMSKeyID)
	}
	return contentType, types.StorageClass(s.o.StorageClass), types.ServerSideEncryption(s.o.SSE), kmsKey, tagging(obj.Tags)
}

// create opens the multipart upload. Its request outlives a cancelled ctx by createGrace: a
// SIGTERM that lands after the store made the upload but before its ID came back would leave an
// upload nobody can name (and so abort), its parts billed until the lifecycle rule. The answer is
// awaited instead, and the upload aborted at once.
func (s *Store) create(ctx context.Context, obj store.Object, key string) (string, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket: &s.o.Bucket,
		Key:    &key,
	}
	in.ContentType, in.StorageClass, in.ServerSideEncryption, in.SSEKMSKeyId, in.Tagging = s.attributes(obj)
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(createGrace, cancel) })
	defer stop()
	var out *s3.CreateMultipartUploadOutput
	err := s.withChecksum(ctx, s.Location(""), func(c Checksum) (err error) {
		in.ChecksumAlgorithm = algorithm(c)
		out, err = s.client.CreateMultipartUpload(cctx, in)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", errors.Join(ctx.Err(), err)
		}
		return "", err
	}
	if out.UploadId == nil || *out.UploadId == "" {
		return "", errors.New("store returned no upload ID")
	}
	if err := ctx.Err(); err != nil {
		if aerr := s.abort(ctx, key, *out.UploadId); aerr != nil {
			return "", fmt.Errorf("%w; the upload it had opened could not be aborted (the bucket's lifecycle rule removes it): %v", err, aerr)
		}
		return "", err
	}
	return *out.UploadId, nil
}

func (s *Store) uploadPart(ctx context.Context, key, uploadID string, num int32, buf []byte) (types.CompletedPart, error) {
	sha := sha256.Sum256(buf)
	var part types.CompletedPart
	err := s.withChecksum(ctx, s.Location(""), func(c Checksum) error {
		sum := sumOf(c, buf, sha)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:            &s.o.Bucket,
			Key:               &key,
			UploadId:          &uploadID,
			PartNumber:        aws.Int32(num),
			Body:              bytes.NewReader(buf),
			ContentLength:     aws.Int64(int64(len(buf))),
			ChecksumAlgorithm: sum.algo,
			ChecksumSHA256:    sum.sha256,
			ChecksumCRC32C:    sum.crc32c,
			ContentMD5:        sum.md5,
		}, withPayloadHash(sha))
		if err != nil {
			return err
		}
		if out.ETag == nil {
			return errors.New("store returned no ETag")
		}
		if sum.sha256 != nil && out.ChecksumSHA256 != nil && *out.ChecksumSHA256 != *sum.sha256 {
			return fmt.Errorf("store recorded SHA-256 %s, sent %s", *out.ChecksumSHA256, *sum.sha256)
		}
		if sum.crc32c != nil && out.ChecksumCRC32C != nil && *out.ChecksumCRC32C != *sum.crc32c {
			return fmt.Errorf("store recorded CRC32C %s, sent %s", *out.ChecksumCRC32C, *sum.crc32c)
		}
		part = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumSHA256: sum.sha256, ChecksumCRC32C: sum.crc32c}
		return nil
	})
	return part, err
}

func (s *Store) complete(ctx context.Context, key, uploadID string, parts []types.CompletedPart, size int64) error {
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          &s.o.Bucket,
		Key:             &key,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		// S3 refuses to complete when the parts do not add up to the announced size.
		MpuObjectSize: aws.Int64(size),
	}
	return s.conditionally(func(conditional bool) error {
		in.IfNoneMatch = nil
		if conditional {
			in.IfNoneMatch = aws.String("*")
		}
		delay := s.retryBase
		for attempt := 1; ; attempt++ {
			_, err := s.client.CompleteMultipartUpload(ctx, in)
			if err == nil || s3err.Of(err) != s3err.Conflict || attempt == completeAttempts {
				return err
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return ctx.Err()
			}
			delay *= 2
		}
	})
}

// UploadOpenedMessage is the log message that names an open multipart upload (fields upload,
// its s3:// location, and upload_id).
const UploadOpenedMessage = "multipart upload opened"

// AbortUpload aborts an upload another process opened (openuploads.Opened), given
// its s3://bucket/key location; an upload of another bucket is not this store's (ok false), one
// that is complete or gone already is fine.
func (s *Store) AbortUpload(ctx context.Context, location, uploadID string) (ok bool, err error) {
	key, mine := strings.CutPrefix(location, "s3://"+s.o.Bucket+"/")
	if !mine {
		return false, nil
	}
	err = s.abort(ctx, key, uploadID)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		err = nil
	}
	if err != nil {
		return true, fmt.Errorf("s3: abort multipart upload %s: %w", location, err)
	}
	return true, nil
}

// abort removes the upload's parts. It runs on a context that outlives ctx, because the usual
// reason to abort is that ctx was cancelled (e.g. SIGTERM).
func (s *Store) abort(ctx context.Context, key, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket:   &s.o.Bucket,
		Key:      &key,
		UploadId: &uploadID,
	})
	return err
}

// uploadRequest is the context of one upload request, named label in stall warnings, with its
// own uploadStallRetries.
func uploadRequest(ctx context.Context, label string) context.Context {
	return stall.WithRetries(stall.WithLabel(ctx, label), uploadStallRetries)
}

// withPayloadHash hands the SDK the body's SHA-256, which it would otherwise compute a second
// time to sign plain-HTTP requests; on HTTPS it signs the payload instead of sending it unsigned.
func withPayloadHash(sum [sha256.Size]byte) func(*s3.Options) {
	h := hex.EncodeToString(sum[:])
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("pgoffsitePayloadHash",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					return next.HandleInitialize(v4.SetPayloadHash(ctx, h), in)
				}), middleware.Before)
		})
	}
}

// expectEOF checks that r has nothing left after the announced size.
func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	n, err := io.ReadAtLeast(r, one[:], 1)
	if n > 0 {
		return fmt.Errorf("source yielded more than %d bytes: %w", size, store.ErrSizeMismatch)
	}
	if err == io.EOF {
		return nil
	}
	return err
}

// sourceError classifies an error met while reading the source.
func sourceError(ctx context.Context, err error, read, size int64) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, store.ErrSizeMismatch):
		return err
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("source yielded %d bytes, want %d: %w", read, size, store.ErrSizeMismatch)
	default:
		return fmt.Errorf("read source: %w", err)
	}
}

// Caps are what the uploader's credentials allow besides Put: looking up retention markers and
// aborting the uploads a fan-out child left open. They may neither read nor delete.
func (s *Store) Caps() store.Caps {
	return store.Caps{Markers: s, Abort: s, ConditionalWritesUnsupported: s.ConditionalWritesUnsupported}
}
