package archive

import (
	"context"
	"io"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
)

// Source is where a target's backup comes from: Heroku's PGBackups (pgbackups), or a pg_dump the
// run starts itself (dumpsource). It is the only part of a run that knows where bytes come from;
// the job checks them, stores them and describes them from the Meta alone.
type Source interface {
	// Open finds or makes t's backup and opens its bytes. The job closes Body. A source whose
	// bytes can fail part-way (a pg_dump exiting non-zero) makes Body's Read return that error
	// instead of io.EOF, so that nothing is published.
	Open(ctx context.Context, t Target) (Backup, error)
}

// Backup is one backup a Source yields.
type Backup struct {
	Meta catalog.Meta
	Body io.ReadCloser
	// Size is the exact length of Body, or store.UnknownSize when it is known only at its end.
	Size int64
}
