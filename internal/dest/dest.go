// Package dest is the registry of destination kinds: the scheme of an ARCHIVE_URL destination
// names its kind, and the kind opens it, for writing archives or for reading them back. Adding
// a destination is one kind here (and its store package) and one line in kinds.
package dest

import (
	"context"
	"fmt"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/preflight"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind opens the destinations of one scheme.
type Kind interface {
	// Open opens a for writing archives, the way a backup does: its Store, and its Caps.
	Open(ctx context.Context, cfg config.Config, a spec.Archive) (store.Store, store.Caps, error)
	// OpenReader opens a for reading archives back (verify, status, restore): Caps.Reader is set.
	OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error)
	// Check is a's preflight (`pgoffsite check`): it probes a the way a backup writes there and
	// reports what a lacks that the archives' safety relies on. i is a's place in ARCHIVE_URL,
	// from 0. Every line names a.
	Check(ctx context.Context, r preflight.Reporter, cfg config.Config, i int, a spec.Archive)
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

// Check runs the preflight of destination a (the i-th of ARCHIVE_URL, from 0) through r.
func Check(ctx context.Context, r preflight.Reporter, cfg config.Config, i int, a spec.Archive) {
	k, ok := kinds[a.Scheme]
	if !ok {
		r.Fail("archive %s: unsupported scheme %q", a, a.Scheme)
		return
	}
	k.Check(ctx, r, cfg, i, a)
}

// openAndProbe opens a the way a backup opens it, with k, and writes the probe there: the
// preflight of the kinds with nothing more to check than that.
func openAndProbe(ctx context.Context, k Kind, r preflight.Reporter, cfg config.Config, a spec.Archive) {
	if cfg.Retention.Set() {
		r.Warn("archive %s: RETENTION: the class is recorded in each manifest and the markers are files there, but nothing expires archives in a directory or on an SFTP server: remove old ones yourself", a)
	}
	st, caps, err := k.Open(ctx, cfg, a)
	if err != nil {
		r.Fail("archive %s: %v", a, err) // a refused host key says what to check
		return
	}
	if caps.Close != nil {
		defer caps.Close()
	}
	preflight.ProbeWrite(ctx, r, a, st)
}

// readAsWritten opens a for reading as k opens it for writing: for the kinds whose one account
// both writes and reads (a directory, an SFTP server).
func readAsWritten(ctx context.Context, k Kind, cfg config.Config, a spec.Archive) (store.Caps, error) {
	_, c, err := k.Open(ctx, cfg, a)
	return c, err
}
