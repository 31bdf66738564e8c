// Package dest is the registry of destination kinds: the scheme of an ARCHIVE_URL destination
// names its kind, and the kind opens it, for writing archives or for reading them back. Adding
// a destination is one kind here (and its store package) and one line in kinds.
package dest

import (
	"context"
	"fmt"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind opens the destinations of one scheme.
type Kind interface {
	// Open opens a for writing archives, the way a backup does: its Store, and its Caps.
	Open(ctx context.Context, cfg config.Config, a spec.Archive) (store.Store, store.Caps, error)
	// OpenReader opens a for reading archives back (verify, status, restore): Caps.Reader is set.
	OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error)
}

// kinds maps each scheme to its kind.
var kinds = map[string]Kind{
	"file": fileKind{},
	"s3":   s3Kind{},
	"sftp": sftpKind{},
}

// For is the kind of destination a.
func For(a spec.Archive) (Kind, error) {
	k, ok := kinds[a.Scheme]
	if !ok {
		return nil, fmt.Errorf("unsupported archive scheme %q", a.Scheme)
	}
	return k, nil
}

// Open opens destination a for writing.
func Open(ctx context.Context, cfg config.Config, a spec.Archive) (store.Store, store.Caps, error) {
	k, err := For(a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return k.Open(ctx, cfg, a)
}

// OpenReader opens destination a for reading.
func OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error) {
	k, err := For(a)
	if err != nil {
		return store.Caps{}, err
	}
	return k.OpenReader(ctx, cfg, a)
}

// readAsWritten opens a for reading as k opens it for writing: for the kinds whose one account
// both writes and reads (a directory, an SFTP server).
func readAsWritten(ctx context.Context, k Kind, cfg config.Config, a spec.Archive) (store.Caps, error) {
	_, c, err := k.Open(ctx, cfg, a)
	return c, err
}
