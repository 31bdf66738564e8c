// Package store is the contract between the backup pipeline and the places archives land: one
// package per destination implements Store (s3store on S3 and compatible stores, filestore on a
// local directory). It knows nothing of where the bytes come from.
package store

import (
	"context"
	"errors"
	"io"
)

// UnknownSize is Object.Size for a stream whose length is not known before it ends (a pg_dump
// writing to its standard output).
const UnknownSize int64 = -1

// Object describes one object to write into a Store.
type Object struct {
	Key string // relative to the store's prefix, slash separated
	// Size is the exact number of bytes r will yield (a different count is an error), or
	// UnknownSize: then r is read to io.EOF, whatever its length.
	Size        int64
	ContentType string
}

// Store is where archives land.
type Store interface {
	// Put reads r to io.EOF and makes the object visible only if r ended without an error (and,
	// for a known size, after exactly obj.Size bytes). On any error — from r, from the store, or a
	// cancelled ctx — nothing is left behind: no visible object, no open multipart upload, no
	// temporary file. An existing object is never overwritten: Put returns an error wrapping
	// ErrExists instead. When Put returns nil it has read r to io.EOF and stored every byte it
	// read: a caller counting and hashing what r yields knows the object's size and SHA-256, for
	// UnknownSize too.
	Put(ctx context.Context, obj Object, r io.Reader) error
	// Location names key for people: s3://bucket/prefix/key or /abs/dir/key.
	Location(key string) string
}

// ErrExists reports that an object already exists at the key (e.g. the backup was archived by an
// earlier run).
var ErrExists = errors.New("object already exists")

// ErrSizeMismatch reports that the reader yielded a different number of bytes than announced.
var ErrSizeMismatch = errors.New("byte count differs from announced size")

// ContextReader reads r until ctx is done, then fails with ctx's error: a Put cancelled by
// SIGTERM stops draining its source at once.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
