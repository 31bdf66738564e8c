package store

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"time"
)

// Reader is the read side of a store, for the commands that check archives (verify, status,
// restore): what the store itself says it holds, never what a manifest beside it claims.
type Reader interface {
	// List describes the objects whose keys start with prefix, sorted by key. It visits only
	// what lies under prefix: other apps' archives are never walked.
	List(ctx context.Context, prefix string) (Listing, error)
	// Open streams the object at key and gives its size.
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Location names key for people: s3://bucket/prefix/key or /abs/dir/key.
	Location(key string) string
}

// ErrArchived reports an object in an archive storage class (S3's GLACIER, DEEP_ARCHIVE) that
// must be restored before it can be read.
var ErrArchived = errors.New("object is in an archive storage class and must be restored first")

// Info is one object as the store records it.
type Info struct {
	Key  string // relative to the store's prefix, slash separated
	Size int64
	// Modified is when the store wrote the object, by its own clock (S3's LastModified: for a
	// multipart upload, when the upload began; a file's modification time). Whoever wrote the
	// object chose its key and its content, but not this.
	Modified time.Time
	// ETag is the store's entity tag without quotes; "" where it keeps none (a directory, SFTP).
	// On S3 it is the MD5 of the bytes only for a single-part upload without SSE-KMS: a multipart
	// upload's is the MD5 of its parts' MD5s with "-N" (N parts) appended.
	ETag string
	// Older are the earlier versions of the key the store still keeps, newest first (S3 with
	// versioning on): each one is a write that the current object replaced. Known only when the
	// listing's Versions is true; delete markers are not counted.
	Older []Version
}

// Version is an earlier version of an object.
type Version struct {
	ID       string // the store's version ID, for a restore of exactly that version
	Size     int64
	Modified time.Time
	ETag     string
}

// Listing is what a store holds under a prefix.
type Listing struct {
	Objects []Info // sorted by key
	// Versions tells that each Info's Older is the store's own account of the key's earlier
	// versions. It is false for stores that keep no versions (a directory, SFTP: there an
	// overwrite leaves no trace but the modification time) and for a versioned store the
	// credentials may not list versions of (then VersionsErr says why).
	Versions bool
	// VersionsErr is why the versions of a store that may keep them could not be listed.
	VersionsErr error
}

// Find returns the object at key.
func (l Listing) Find(key string) (Info, bool) {
	i := sort.Search(len(l.Objects), func(i int) bool { return l.Objects[i].Key >= key })
	if i < len(l.Objects) && l.Objects[i].Key == key {
		return l.Objects[i], true
	}
	return Info{}, false
}

// Keys are the listed keys, in order.
func (l Listing) Keys() []string {
	keys := make([]string, len(l.Objects))
	for i, o := range l.Objects {
		keys[i] = o.Key
	}
	return keys
}

// SortInfos sorts a listing's objects by key, as Listing.Objects must be.
func SortInfos(objs []Info) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
}

// UnderPrefix tells whether a directory at rel (slash separated, relative to the store's root,
// without a trailing slash) can hold keys starting with prefix: a walk of a store kept as a
// directory tree descends only where it can, so that listing one app never visits another's.
func UnderPrefix(rel, prefix string) bool {
	dir := rel + "/"
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}
