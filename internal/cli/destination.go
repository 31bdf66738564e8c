package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// loadForReading loads the configuration of a command that reads archives (verify, restore),
// with Archive the destination --destination picks.
func loadForReading(choice, command string, opts ...config.Option) (config.Config, error) {
	cfg, err := config.LoadFor(command, opts...)
	if err != nil {
		return cfg, err
	}
	a, err := dest.Pick(cfg.Archives, choice)
	if err != nil {
		return cfg, fmt.Errorf("  --destination: %w", err)
	}
	cfg.Archive = a
	return cfg, nil
}

// openDestinations opens every destination ARCHIVE_URL names, each with its capabilities (in
// the same order). One that cannot be opened (a server down, a host key that does not match) is
// logged once and fails each of its copies, while the others go on: a second copy is worth
// having even when the first cannot be made.
func openDestinations(ctx context.Context, log zerolog.Logger, cfg config.Config) (dests []archive.Destination, caps []store.Caps, opened int, closeAll func()) {
	for _, a := range cfg.Archives {
		d, c, err := openArchiveDestination(ctx, cfg, a)
		if err != nil {
			log.Error().Err(err).Str("destination", a.String()).Msg("cannot open the destination: its copies fail, the others go on")
			d = archive.Destination{Name: a.String(), Store: unavailable{name: a.String(), err: err}}
		} else {
			opened++
			removeStaleTemps(ctx, log, a.String(), c)
		}
		dests, caps = append(dests, d), append(caps, c)
	}
	return dests, caps, opened, func() {
		for _, c := range caps {
			if c.Close != nil {
				c.Close()
			}
		}
	}
}

// destinationNames names the destinations for the log.
func destinationNames(cfg config.Config) []string {
	names := make([]string, len(cfg.Archives))
	for i, a := range cfg.Archives {
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
func openArchiveDestination(ctx context.Context, cfg config.Config, a spec.Archive) (archive.Destination, store.Caps, error) {
	st, c, err := dest.Open(ctx, cfg.Env(), a)
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
