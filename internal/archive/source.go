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
	// Streams, when set, makes the backup a set of streams of unknown size, Body the first.
	Streams *Streams
}

// Streams is a backup taken as several streams at once (a parallel pg_dump, PG_DUMP_JOBS): the
// Backup's Body is the first, stored at the dump key; each of Parts is stored beside it at
// catalog.PartKey(key, n), n from 1. The job stores them as one set: none is made visible
// unless every one was read to its end and checked, and the manifest, written last, names them.
type Streams struct {
	Snapshot string // the exported snapshot every stream read, for the record
	Jobs     int    // PG_DUMP_JOBS
	Parts    []Part
	// Stop stops every stream at once (a failed one fails the set): their processes are killed
	// and the snapshot's session closed. The job calls it on any failure of the set.
	Stop func()
}

// Part is one data stream of a set.
type Part struct {
	Body   io.ReadCloser
	Tables []string // the tables whose data it carries, as schema.name
}
