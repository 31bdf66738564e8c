package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// manifest is the manifest stage's record of the archive: neutral fields from the source's
// Meta, and for a Heroku database the same top-level fields as archives made before sources
// were separate, so that verify and people's scripts read old and new alike; then what the
// stages found (encryption, structure), the retention class and, with several destinations,
// each copy's outcome.
func (j *Job) manifest(log zerolog.Logger, meta catalog.Meta, h pgdump.Header, ds *dumpStream, res *Result) catalog.Manifest {
	origin := meta.Origin
	m := catalog.Manifest{
		ManifestVersion:  1,
		App:              meta.App,
		Database:         meta.Database,
		Backup:           meta.Backup,
		BackupCreatedAt:  meta.CreatedAt.UTC(),
		BackupFinishedAt: meta.FinishedAt.UTC(),
		Mode:             meta.Mode,
		Bytes:            res.Bytes,
		SHA256:           res.SHA256,
		Key:              res.Key,
		ArchivedAt:       j.now().UTC().Truncate(time.Second),
		PgDump:           h,
		PgoffsiteVersion: j.Version,
		Origin:           &origin,
		Retention:        res.Retention,
	}
	if hk := origin.Heroku; hk != nil {
		m.Addon, m.BillingApp, m.Plan, m.TransferUUID = hk.Addon, hk.BillingApp, hk.Plan, hk.TransferUUID
	}
	if j.Encrypt != nil {
		m.Encryption = &catalog.Encryption{Format: "age", Recipients: j.Encrypt.Describe(),
			PlaintextBytes: ds.plain.n.Load(), PlaintextSHA256: ds.plain.sum()}
	}
	if ds.checked != nil && ds.checked.summary != nil {
		m.Structure = ds.checked.summary
		if !res.AlreadyArchived {
			noteFramingOnly(log, *m.Structure, res)
		}
	}
	if len(res.Copies) > 1 {
		// With one destination the manifest stays as it always was.
		for _, c := range res.Copies {
			m.Copies = append(m.Copies, catalog.CopyStatus{Destination: c.Destination, Status: c.Status()})
		}
	}
	return m
}

// noteFramingOnly says, in res and the log, which data of the archive the check did not
// decompress, if any.
func noteFramingOnly(log zerolog.Logger, sum pgdump.Summary, res *Result) {
	names := sum.FramingOnly()
	if len(names) == 0 && sum.OtherFramingOnly == 0 {
		return
	}
	res.FramingOnly, res.OtherFramingOnly, res.Decompressed = names, sum.OtherFramingOnly, Decompressed(sum)
	log.Info().Strs("tables", names).Int("large_objects_and_other_data", sum.OtherFramingOnly).
		Str("decompressed", res.Decompressed).
		Str("hint", "ARCHIVE_CHECK=full decompresses every block at the cost of speed; pgoffsite verify does it later").
		Msg("the download outran decompression: this data was checked for framing, not decompressed")
}

// writeManifests writes m beside the dump at every destination that has the dump (under fctx,
// which outlives an interruption), with the dump's tags, so that it expires with the dump. A
// destination where it fails gets its copy's error (withoutManifest, which may remove the
// archive's objects, keys: the dump and a set's parts, under ctx's grace).
func (j *Job) writeManifests(ctx, fctx context.Context, m catalog.Manifest, tags map[string]string, res *Result, keys []string) error {
	blob, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mobj := store.Object{Key: catalog.ManifestKey(res.Key), Size: int64(len(blob)), ContentType: "application/json", Tags: tags}
	merrs := make([]error, len(j.Destinations))
	var wg sync.WaitGroup
	for i, d := range j.Destinations {
		if res.Copies[i].Err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Store.Put(fctx, mobj, bytes.NewReader(blob)); err != nil && !errors.Is(err, store.ErrExists) {
				merrs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, d := range j.Destinations {
		if merrs[i] != nil {
			res.Copies[i].Err = j.withoutManifest(ctx, d, res.Copies[i], keys, merrs[i])
		}
	}
	return nil
}

// withoutManifest deals with a dump stored at d whose manifest could not be written, and
// returns the copy's error. A dump this run stored (keys: the dump and a set's parts) is removed
// where the destination may delete (the next run archives the backup again); elsewhere, and for
// a dump an earlier run stored, the error names where it stays.
func (j *Job) withoutManifest(ctx context.Context, d Destination, c Copy, keys []string, merr error) error {
	if c.AlreadyArchived {
		return fmt.Errorf("write manifest (the dump itself, stored by an earlier run, is at %s): %w", c.Location, merr)
	}
	what, was, stays := "the dump", "was", "stays"
	if len(keys) > 1 {
		what, was, stays = fmt.Sprintf("the dump and its %d parts", len(keys)-1), "were", "stay"
	}
	rerr := j.takeBack(ctx, d, keys)
	if rerr == nil {
		return fmt.Errorf("write manifest: %w; %s %s removed again from %s, since a dump without its manifest cannot be checked (the next run archives the backup again)", merr, what, was, c.Location)
	}
	if d.Remove != nil {
		merr = fmt.Errorf("%w; removing %s failed too: %w", merr, what, rerr)
	}
	return fmt.Errorf("write manifest: %w; %s %s at %s without a manifest: pgoffsite status and verify report it "+
		"as a problem until it is deleted there with credentials that may delete (the uploader's may not)", merr, what, stays, c.Location)
}

// errNoRemove is takeBack's answer where the destination's credentials may not delete.
var errNoRemove = errors.New("the destination's credentials may not delete")

// takeBack removes keys from d, under a grace that outlives ctx's cancellation; errNoRemove
// where d cannot delete.
func (j *Job) takeBack(ctx context.Context, d Destination, keys []string) error {
	if d.Remove == nil {
		return errNoRemove
	}
	rctx, cancel := outlive(ctx, j.commitLimit())
	defer cancel()
	var errs []error
	for _, k := range keys {
		if err := d.Remove.Remove(rctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// outlive is a context for what must follow a committed dump: not cancelled with ctx, so that
// a SIGTERM cannot cut a dump from its manifest, but ended grace after ctx is (at once if it
// is already): the run still exits well within the 30 s Heroku gives between SIGTERM and SIGKILL.
func outlive(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(octx, func() { t.Stop() })
	})
	return octx, func() { stop(); cancel() }
}
