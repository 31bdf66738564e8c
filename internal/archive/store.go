package archive

import (
	"context"
	"errors"
	"io"
)

// Object describes one object to write into a Store.
type Object struct {
	Key         string // relative to the store's prefix, slash separated
	Size        int64  // exact number of bytes r will yield; a different count is an error
	ContentType string
}

// Store is where archives land. Implementations: s3store (S3 and compatible stores) and
// filestore (a local directory).
type Store interface {
	// Put reads r to io.EOF and makes the object visible only if exactly obj.Size bytes were read
	// and no error occurred. On any error — from r, from the store, or a cancelled ctx — nothing is
	// left behind: no visible object, no open multipart upload, no temporary file. An existing
	// object is never overwritten: Put returns an error wrapping ErrExists instead.
	Put(ctx context.Context, obj Object, r io.Reader) error
	// Location names key for people: s3://bucket/prefix/key or /abs/dir/key.
	Location(key string) string
}

// ErrExists reports that an object already exists at the key (e.g. the backup was archived by an
// earlier run).
var ErrExists = errors.New("object already exists")

// ErrSizeMismatch reports that the reader yielded a different number of bytes than announced.
var ErrSizeMismatch = errors.New("byte count differs from announced size")
