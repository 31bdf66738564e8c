// Package azstore is the Azure Blob Storage destination, azblob://ACCOUNT/CONTAINER/prefix. An
// archive that fits in one part is one Put Blob; a larger one is a block blob whose blocks are
// staged in parallel, each with its MD5. Either becomes visible in one step, a Put Blob or the
// commit of the block list, with If-None-Match: * (never over an existing blob). A failed or
// cancelled upload commits nothing: its staged blocks stay invisible and Azure discards
// uncommitted blocks after 7 days, so nothing is left that anyone sees or that costs for long.
package azstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Defaults when Options leave the block size and the blocks in flight out.
const (
	DefaultPartSize = 16 << 20
	DefaultParts    = 4
	// maxBlocks is Azure's limit of blocks in one blob.
	maxBlocks = 50000
)

// discarded is what a failed upload whose blocks were staged leaves: Azure keeps uncommitted
// blocks out of every listing and read, and deletes them 7 days after the last was staged.
const discarded = "nothing was committed: the blocks staged are invisible and Azure discards them within 7 days"

// Store writes archives into one container under a prefix.
type Store struct {
	c        *container.Client
	s        Settings
	perms    perms
	red      *scrub.Redactor
	partSize int64
	parts    int
}

// Open builds the container's client from o; it makes no call.
func Open(o Options) (*Store, error) {
	c, p, red, err := newContainer(o)
	if err != nil {
		return nil, err
	}
	st := &Store{c: c, s: o.Settings, perms: p, red: red, partSize: o.PartSize, parts: o.Parts}
	if st.partSize <= 0 {
		st.partSize = DefaultPartSize
	}
	if st.parts <= 0 {
		st.parts = DefaultParts
	}
	return st, nil
}

// Caps are what the credentials allow besides creating blobs: a SAS declares its permissions,
// an account key may do everything. Nothing is left for Stale or Abort to clean: Azure discards
// uncommitted blocks itself.
func (s *Store) Caps() store.Caps {
	var c store.Caps
	if s.perms.read && s.perms.list {
		c.Reader = s
	}
	if s.perms.write {
		c.Records = s
	}
	if s.perms.delete {
		c.Remove = s
	}
	return c
}

func (s *Store) full(key string) string {
	if s.s.Prefix == "" {
		return key
	}
	return s.s.Prefix + "/" + key
}

// Location is azblob://ACCOUNT/CONTAINER/prefix/key.
func (s *Store) Location(key string) string { return s.s.Location() + "/" + key }

// Put writes an object that fits in one part with one Put Blob, and a larger one as blocks of
// the part size staged in parallel, at most parts of them in flight (parts+1 buffers in all, the
// kind's UploadMemory), then committed as a block list. Either way the write carries the MD5 of
// its bytes and If-None-Match: *, so it never replaces a blob, and obj.Tags as the blob's index
// tags (retention=CLASS, what the lifecycle policy setup-bucket prints matches), set in the
// same request: no blob is ever visible without its class.
func (s *Store) Put(ctx context.Context, obj store.Object, r io.Reader) (err error) {
	loc := s.Location(obj.Key)
	if obj.Size < 0 && obj.Size != store.UnknownSize {
		return fmt.Errorf("put %s: invalid size %d", loc, obj.Size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", loc, err)
	}
	if obj.Size > s.partSize*maxBlocks {
		return fmt.Errorf("put %s: %d bytes need more than Azure's %d blocks of %d bytes: raise ARCHIVE_PART_SIZE", loc, obj.Size, maxBlocks, s.partSize)
	}
	bb := s.c.NewBlockBlobClient(s.full(obj.Key))
	headers := &blob.HTTPHeaders{}
	if obj.ContentType != "" {
		headers.BlobContentType = to.Ptr(obj.ContentType)
	}
	ifNone := &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	ids, single, sum, err := s.stage(ctx, bb, obj, store.ContextReader(ctx, r))
	if err != nil {
		return err
	}
	defer func() {
		if ids != nil && err != nil && !errors.Is(err, store.ErrExists) {
			err = fmt.Errorf("%w (%s)", err, discarded)
		}
	}()
	headers.BlobContentMD5 = sum
	var requestID *string
	if ids == nil {
		var resp blockblob.UploadResponse
		resp, err = bb.Upload(stall.WithLabel(ctx, "put "+loc), streaming.NopCloser(bytes.NewReader(single)), &blockblob.UploadOptions{
			HTTPHeaders: headers, AccessConditions: ifNone, TransactionalValidation: blob.TransferValidationTypeMD5(sum), Tags: obj.Tags})
		requestID = resp.RequestID
	} else {
		var resp blockblob.CommitBlockListResponse
		resp, err = bb.CommitBlockList(stall.WithLabel(ctx, "commit "+loc), ids, &blockblob.CommitBlockListOptions{
			HTTPHeaders: headers, AccessConditions: ifNone, Tags: obj.Tags})
		requestID = resp.RequestID
	}
	if s.exists(err) {
		return fmt.Errorf("put %s: %w", loc, store.ErrExists)
	}
	if err == nil {
		err = fromAzure(requestID)
	}
	return wrapErr(s.red, "put "+loc, err)
}

// exists tells whether the write that makes a blob visible was refused because one is there.
// A SAS that may create blobs but not write them is refused an overwrite as a missing
// permission: for it, that refusal means the blob exists.
func (s *Store) exists(err error) bool {
	if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return true
	}
	return s.perms.create && !s.perms.write && bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch)
}

// stage reads r in parts. An object that ends within its first part is returned whole (single,
// ids nil); a larger one is staged as blocks, whose IDs are returned in order. sum is the MD5 of
// all the bytes. A known size must be met exactly.
func (s *Store) stage(ctx context.Context, bb *blockblob.Client, obj store.Object, r io.Reader) (ids []string, single, sum []byte, err error) {
	loc := s.Location(obj.Key)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.parts)
	// free holds the buffers not in flight; one more than parts is being filled meanwhile.
	free := make(chan []byte, s.parts+1)
	made := 0
	buffer := func() []byte {
		select {
		case b := <-free:
			return b
		default:
		}
		if made < s.parts+1 {
			made++
			return make([]byte, s.partSize)
		}
		return <-free // a goroutine of g always gives its buffer back
	}
	fail := func(err error) ([]string, []byte, []byte, error) {
		g.Wait()
		if ids != nil {
			err = fmt.Errorf("%w (%s)", err, discarded)
		}
		return nil, nil, nil, err
	}
	// Block IDs of one blob must all have the same length; the random tag keeps two uploads
	// to one name from committing each other's blocks.
	tag := make([]byte, 8)
	rand.Read(tag)
	whole := md5.New()
	var n int64
	for {
		want := s.partSize
		if obj.Size != store.UnknownSize {
			want = min(want, obj.Size-n)
		}
		var buf []byte
		var k int
		if want > 0 {
			buf = buffer()
			k, err = io.ReadFull(r, buf[:want])
		}
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return fail(fmt.Errorf("put %s: read the archive: %w", loc, err))
		}
		last := eof
		if obj.Size != store.UnknownSize {
			if eof {
				return fail(fmt.Errorf("put %s: the archive ended after %d of the %d bytes announced: %w", loc, n+int64(k), obj.Size, store.ErrSizeMismatch))
			}
			if last = n+int64(k) == obj.Size; last {
				// Every announced byte is read: the source must end here.
				if extra, _ := io.ReadFull(r, make([]byte, 1)); extra > 0 {
					return fail(fmt.Errorf("put %s: more than the %d bytes announced: %w", loc, obj.Size, store.ErrSizeMismatch))
				}
			}
		}
		n += int64(k)
		whole.Write(buf[:k])
		if last && ids == nil {
			if err := ctx.Err(); err != nil {
				return fail(fmt.Errorf("put %s: %w", loc, err))
			}
			return nil, buf[:k], whole.Sum(nil), nil
		}
		if k > 0 {
			if len(ids) == maxBlocks {
				return fail(fmt.Errorf("put %s: more than Azure's %d blocks of %d bytes: raise ARCHIVE_PART_SIZE", loc, maxBlocks, s.partSize))
			}
			id := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s-%06d", hex.EncodeToString(tag), len(ids))))
			ids = append(ids, id)
			label := fmt.Sprintf("stage block %d of %s", len(ids), loc)
			block := buf[:k]
			g.Go(func() error {
				defer func() { free <- buf }()
				h := md5.Sum(block)
				resp, err := bb.StageBlock(stall.WithLabel(gctx, label), id, streaming.NopCloser(bytes.NewReader(block)),
					&blockblob.StageBlockOptions{TransactionalValidation: blob.TransferValidationTypeMD5(h[:])})
				if err == nil {
					err = fromAzure(resp.RequestID)
				}
				if err := wrapErr(s.red, label, err); err != nil {
					err.(*Error).Block = true
					return err
				}
				return nil
			})
		}
		if last || gctx.Err() != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("put %s: %w", loc, err))
	}
	return ids, nil, whole.Sum(nil), nil
}

// keyOf is the key of a blob name under the prefix.
func (s *Store) keyOf(name string) string {
	if s.s.Prefix == "" {
		return name
	}
	return strings.TrimPrefix(name, s.s.Prefix+"/")
}

// errNotAzure is a success that did not come from Azure Storage, which names every answer
// (x-ms-request-id): a proxy's or a portal's page in the way, whose "created" keeps nothing.
var errNotAzure = errors.New("the answer did not come from Azure Storage (no x-ms-request-id): a proxy or another server answers at endpoint=; check ARCHIVE_URL's endpoint and the network")

func fromAzure(requestID *string) error {
	if requestID == nil || *requestID == "" {
		return errNotAzure
	}
	return nil
}
