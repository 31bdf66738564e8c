package azstore

import (
	"bytes"
	"context"
	"io"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// callTimeout bounds each call that moves no archive: a page of a listing, a record, a delete.
const callTimeout = 2 * time.Minute

// List lists the blobs under prefix, sorted by name as Azure lists them. Azure keeps no earlier
// versions a listing reads here (blob versioning is the account's, read by its own tools).
func (s *Store) List(ctx context.Context, prefix string) (store.Listing, error) {
	full := s.full(prefix)
	if s.s.Prefix != "" && prefix == "" {
		full = s.s.Prefix + "/"
	}
	p := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(full)})
	var objs []store.Info
	for p.More() {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		page, err := p.NextPage(stall.WithLabel(cctx, "list "+s.Location(prefix)))
		cancel()
		if err != nil {
			return store.Listing{}, wrapErr(s.red, "list "+s.Location(prefix), err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil || b.Properties == nil {
				continue
			}
			info := store.Info{Key: s.keyOf(*b.Name)}
			if b.Properties.ContentLength != nil {
				info.Size = *b.Properties.ContentLength
			}
			if b.Properties.LastModified != nil {
				info.Modified = *b.Properties.LastModified
			}
			if b.Properties.ETag != nil {
				info.ETag = strings.Trim(string(*b.Properties.ETag), `"`)
			}
			objs = append(objs, info)
		}
	}
	store.SortInfos(objs)
	return store.Listing{Objects: objs}, nil
}

// Open streams the blob at key. The stall watcher bounds each silence of the body; the body
// may take as long as it moves.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	loc := s.Location(key)
	out, err := s.c.NewBlobClient(s.full(key)).DownloadStream(stall.WithLabel(ctx, "get "+loc), nil)
	if err != nil {
		return nil, 0, wrapErr(s.red, "get "+loc, err)
	}
	var size int64
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return scrubbedBody{out.Body, s, loc}, size, nil
}

// scrubbedBody says a failed read of a blob without the credentials.
type scrubbedBody struct {
	io.ReadCloser
	s   *Store
	loc string
}

func (b scrubbedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = wrapErr(b.s.red, "read "+b.loc, err)
	}
	return n, err
}

// Replace writes a small record at key, replacing the one there.
func (s *Store) Replace(ctx context.Context, key string, body []byte) error {
	loc := s.Location(key)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.c.NewBlockBlobClient(s.full(key)).Upload(stall.WithLabel(ctx, "put "+loc),
		streaming.NopCloser(bytes.NewReader(body)), &blockblob.UploadOptions{
			HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to.Ptr("application/json")}})
	return wrapErr(s.red, "put "+loc, err)
}

// Remove deletes the blob at key and its snapshots; one that is not there is not an error.
func (s *Store) Remove(ctx context.Context, key string) error {
	loc := s.Location(key)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.c.NewBlobClient(s.full(key)).Delete(stall.WithLabel(ctx, "delete "+loc),
		&blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return wrapErr(s.red, "delete "+loc, err)
}
