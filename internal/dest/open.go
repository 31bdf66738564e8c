package dest

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Opened is every destination ARCHIVE_URL names, opened for the backup job.
type Opened struct {
	Destinations []archive.Destination
	Caps         []store.Caps // each destination's, in the same order
	N            int          // how many could be opened
}

// OpenAll opens every destination of archives for the backup job, each with its capabilities.
// One that cannot be opened (a server down, a host key that does not match) is logged once and
// fails each of its copies, while the others go on: a second copy is worth having even when the
// first cannot be made. Temporary files that killed runs left are removed from the others.
func OpenAll(ctx context.Context, log zerolog.Logger, env spec.Env, archives []spec.Archive) Opened {
	var o Opened
	for _, a := range archives {
		d, c, err := openArchiveDestination(ctx, env, a)
		if err != nil {
			log.Error().Err(err).Str("destination", a.String()).Msg("cannot open the destination: its copies fail, the others go on")
			d = archive.Destination{Name: a.String(), Store: unavailable{name: a.String(), err: err}}
		} else {
			o.N++
			removeStaleTemps(ctx, log, a.String(), c)
		}
		o.Destinations, o.Caps = append(o.Destinations, d), append(o.Caps, c)
	}
	return o
}

// Close closes the connections of the destinations that hold one.
func (o Opened) Close() error {
	for _, c := range o.Caps {
		if c.Close != nil {
			c.Close()
		}
	}
	return nil
}

// WarnReplaceable warns of each destination that has rejected conditional writes during the
// run: a re-run could have overwritten an archive there.
func (o Opened) WarnReplaceable(log zerolog.Logger) {
	for i, d := range o.Destinations {
		if unsupported := o.Caps[i].ConditionalWritesUnsupported; unsupported != nil && unsupported() {
			log.Warn().Str("destination", d.Name).Msg("the archive store rejects conditional writes (If-None-Match): an existing archive could be overwritten by a re-run; S3 itself supports them")
		}
	}
}

// Names names the destinations of archives for the log.
func Names(archives []spec.Archive) []string {
	names := make([]string, len(archives))
	for i, a := range archives {
		names[i] = a.String()
	}
	return names
}

// unavailable stands for a destination that could not be opened: every write to it fails
// with the reason, before reading anything.
type unavailable struct {
	name string
	err  error
}

func (u unavailable) Put(context.Context, store.Object, io.Reader) error {
	return fmt.Errorf("the destination could not be opened: %w", u.err)
}

func (u unavailable) Location(key string) string { return strings.TrimSuffix(u.name, "/") + "/" + key }

// openArchiveDestination opens destination a for the backup job, with what its kind allows
// besides writing: a directory and an SFTP account may delete (the job takes back a dump whose
// manifest it could not write) and keep retention markers; an S3 uploader keeps markers but may
// not delete, by design.
func openArchiveDestination(ctx context.Context, env spec.Env, a spec.Archive) (archive.Destination, store.Caps, error) {
	st, c, err := Open(ctx, env, a)
	if err != nil {
		return archive.Destination{Name: a.String()}, store.Caps{}, err
	}
	return archive.Destination{Name: a.String(), Store: st, Markers: c.Markers, Remove: c.Remove}, c, nil
}

// removeStaleTemps removes the temporary files that a run killed mid-upload left at a
// destination. A failure costs only space, so it is a warning and the run goes on.
func removeStaleTemps(ctx context.Context, log zerolog.Logger, name string, c store.Caps) {
	if c.Stale == nil {
		return
	}
	removed, err := c.Stale.RemoveStale(ctx)
	for _, p := range removed {
		log.Info().Str("destination", name).Str("file", p).Msg("removed a temporary file an interrupted earlier run left behind")
	}
	if err != nil {
		log.Warn().Str("destination", name).Err(err).Msg("could not remove every temporary file of earlier runs (the backup goes on)")
	}
}

// Source is the destination a reading command reads (verify, status, restore, list), with what
// else its kind can do there: keep verification records, close its connection.
type Source struct {
	store.Reader
	Caps store.Caps
}

// OpenSource opens destination a for reading: S3 with the reader's credentials (the uploader's
// cannot read), the other kinds as a backup opens them.
func OpenSource(ctx context.Context, env spec.Env, a spec.Archive) (*Source, error) {
	c, err := OpenReader(ctx, env, a)
	if err != nil {
		return nil, err
	}
	return &Source{Reader: c.Reader, Caps: c}, nil
}

// Close ends the source's connection, if it holds one.
func (s *Source) Close() error {
	if s.Caps.Close == nil {
		return nil
	}
	return s.Caps.Close()
}
