// Package dest is the registry of destination kinds: the scheme of an ARCHIVE_URL destination
// names its kind (spec.Kind), which reads its URL, opens it for writing archives or for reading
// them back, probes it for `pgoffsite check`, and says what memory an upload to it takes.
// Adding a destination is its kind's package and one line in kinds.
package dest

import (
	"context"
	"fmt"

	"github.com/pgoffsite/pgoffsite/internal/azstore"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/gcsstore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// kinds maps each scheme to its kind: the one table of destinations.
var kinds = map[string]spec.Kind{
	azstore.Scheme:   azstore.Kind,
	filestore.Scheme: filestore.Kind,
	gcsstore.Scheme:  gcsstore.Kind,
	s3store.Scheme:   s3Kind{},
	sftpstore.Scheme: sftpstore.Kind,
}

// For is the kind of scheme; ok is false for a scheme no kind reads.
func For(scheme string) (k spec.Kind, ok bool) {
	k, ok = kinds[scheme]
	return k, ok
}

func kindOf(a spec.Archive) (spec.Kind, error) {
	k, ok := kinds[a.Scheme]
	if !ok {
		return nil, fmt.Errorf("unsupported archive scheme %q", a.Scheme)
	}
	return k, nil
}

// Open opens destination a for writing.
func Open(ctx context.Context, env spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	k, err := kindOf(a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return k.Open(ctx, env, a)
}

// OpenReader opens destination a for reading.
func OpenReader(ctx context.Context, env spec.Env, a spec.Archive) (store.Caps, error) {
	k, err := kindOf(a)
	if err != nil {
		return store.Caps{}, err
	}
	return k.OpenReader(ctx, env, a)
}

// Check runs the preflight of all[i], ARCHIVE_URL's i-th destination (from 0), through r.
func Check(ctx context.Context, r spec.Checker, env spec.Env, all []spec.Archive, i int) {
	k, ok := kinds[all[i].Scheme]
	if !ok {
		r.Fail("archive %s: unsupported scheme %q", all[i], all[i].Scheme)
		return
	}
	k.Check(ctx, r, env, all, i)
}

// UploadMemory is what one archive's uploads to the destinations as hold in memory, parts of
// partSize, parts in flight per destination, as their kinds say; buffering is how many of them
// hold any. Without any such destination it is one upload to the kind that holds the most, so
// that ARCHIVE_MEMORY_LIMIT and ARCHIVE_PART_SIZE are checked alike wherever archives go.
func UploadMemory(as []spec.Archive, partSize int64, parts int) (bytes int64, buffering int) {
	for _, a := range as {
		if k, ok := kinds[a.Scheme]; ok {
			if n := k.UploadMemory(partSize, parts); n > 0 {
				bytes, buffering = bytes+n, buffering+1
			}
		}
	}
	if buffering > 0 {
		return bytes, buffering
	}
	for _, k := range kinds {
		bytes = max(bytes, k.UploadMemory(partSize, parts))
	}
	return bytes, 0
}
