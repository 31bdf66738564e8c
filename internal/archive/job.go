// Package archive is the backup job: for each target it takes a backup from a Source and
// streams it through stages (stages.go: header check before the first byte is stored, structure
// check, SHA-256, encryption; fanout.go: the tee to every destination), then writes its manifest
// (manifest.go) and retention markers (markers.go). Other objects (StoreStream: an app's bundle)
// go through the same stages. Progress is reported as events (Progress); the job draws nothing.
package archive

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Target is one database to archive, named as the user named it: a Heroku app and database, or
// (Env) the name of a variable in pgoffsite's own environment holding a Postgres URL, in Database
// with App "env".
type Target struct {
	App      string
	Database string
	Env      bool
}

func (t Target) String() string {
	if t.Env {
		return "env:" + t.Database
	}
	return t.App + ":" + t.Database
}

// Result is what happened to one target.
type Result struct {
	Target          Target
	Backup          string // e.g. b042
	Bytes           int64  // what the stores hold: the ciphertext's size when encrypted
	SHA256          string // of what the stores hold
	Key             string // the dump's key in the stores
	Location        string // where people find it: the first copy that exists
	AlreadyArchived bool   // an earlier run archived this very backup at every destination
	Retention       string // the class with RETENTION: daily, weekly, monthly or yearly
	// Copies is the outcome at each destination, in the job's order. Err is set when any failed.
	Copies []Copy
	// FramingOnly names (schema.name) the tables that ARCHIVE_CHECK=auto checked for framing
	// only, not decompressed, and OtherFramingOnly counts the large objects and other data it
	// did so with: damage inside them is found by pgoffsite verify, not by this run.
	FramingOnly      []string
	OtherFramingOnly int
	// Decompressed says, when part of the archive was checked for framing only, how much of its
	// compressed data the check decompressed (see the function Decompressed).
	Decompressed string
	Duration     time.Duration
	Err          error
}

// PartlyChecked reports whether part of the archive was checked for framing only.
func (r Result) PartlyChecked() bool { return len(r.FramingOnly) > 0 || r.OtherFramingOnly > 0 }

// Encrypter encrypts an archive as it streams: the ciphertext of plain and its exact size (-1,
// store.UnknownSize, when plainSize is), and the public keys it encrypts to, for the manifest.
type Encrypter interface {
	EncryptReader(plain io.Reader, plainSize int64) (io.Reader, int64, error)
	Describe() []agecrypt.Recipient
}

// Job archives targets.
type Job struct {
	Source Source
	// Destinations receive every archive, all from one read of the backup.
	Destinations []Destination
	// Encrypt, when set, encrypts what the destinations receive (ARCHIVE_RECIPIENTS); the checks
	// still read the plaintext.
	Encrypt Encrypter
	Version string
	Log     zerolog.Logger
	Now     func() time.Time
	// ProgressEvery is the interval of progress lines while a capture runs or bytes stream.
	ProgressEvery time.Duration
	// Progress, when set (a terminal, as under `heroku run`), gets every target's progress as
	// events: a live line drawn by the caller.
	Progress Progress
	// Parallel is how many targets are archived at once (BACKUP_PARALLEL); 0 or 1 is one after
	// another. The sources and stores are shared: their buffers must be sized for a share of the
	// memory budget (config.FitBuffers).
	Parallel int
	// Check is how much of the archive is checked while it streams; empty means CheckAuto.
	Check string
	// Retention, when set (RETENTION), gives each archive a class, as its S3 tag and in its
	// manifest, decided in RetentionZone (nil: UTC) from the destinations' markers.
	Retention     retention.Policy
	RetentionZone *time.Location

	checkAllowance func(time.Duration) time.Duration // for tests; nil means pgdump.DefaultAllowance
	timing         timing                            // for tests; zero fields take the defaults
}

// How much of an archive the job checks while it streams. Every mode checks the header before
// the first byte is uploaded.
const (
	// CheckAuto checks the TOC and every data block's framing, and decompresses every block
	// (counting rows) of an archive under 64 MiB; of a bigger one, as long as that holds the
	// download back by no more than pgdump.DefaultAllowance. A table it falls behind on is checked for
	// framing only and named in the log, the summary, the webhook and the manifest.
	CheckAuto = "auto"
	// CheckFull decompresses every block, holding the download to that speed.
	CheckFull = "full"
	// CheckHeader checks only the header.
	CheckHeader = "header"
)

// Run archives every target, Parallel at once (one after another by default); one failing does
// not stop the others. The results are in the targets' order.
func (j *Job) Run(ctx context.Context, targets []Target) []Result {
	results := make([]Result, len(targets))
	n := max(1, min(j.Parallel, len(targets)))
	next := make(chan int)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = j.Archive(ctx, targets[i])
				// Each target allocates its part buffers anew; the finished target's are garbage
				// now, but the runtime would let the heap grow to twice the live size before
				// collecting them, so peak memory would climb with the number of targets.
				// Returning them to the system after each target keeps a run of thirty databases
				// at one database's peak (with Parallel, at Parallel targets' shares of it).
				debug.FreeOSMemory()
			}
		}()
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// Archive archives one target.
func (j *Job) Archive(ctx context.Context, t Target) Result {
	start := j.now()
	log := j.Log.With().Str("app", t.App).Str("database", t.Database).Logger()
	ctx = log.WithContext(ctx) // the download and the store warn of stalls through it
	log.Info().Msg("target started")
	res := Result{Target: t}
	err := j.archive(ctx, log, t, &res)
	res.Duration = j.now().Sub(start)
	j.emit(Event{Kind: Finished, Target: t, Label: res.Backup, Bytes: res.Bytes, Err: err})
	if err != nil {
		res.Err = err
		return res
	}
	ev := log.Info().Str("backup", res.Backup).Int64("bytes", res.Bytes).Str("sha256", res.SHA256).
		Str("location", res.Location).Str("duration", res.Duration.Round(time.Millisecond).String())
	if res.Retention != "" && !res.AlreadyArchived {
		ev = ev.Str("retention", res.Retention)
	}
	if res.AlreadyArchived {
		ev.Msg("target already archived by an earlier run")
	} else {
		ev.Msg("target archived")
	}
	return res
}

// archive is one target through the stages: open, header, structure and hashes (and
// encryption), retention class, tee, manifest, markers.
func (j *Job) archive(ctx context.Context, log zerolog.Logger, t Target, res *Result) error {
	b, err := j.Source.Open(ctx, t)
	if err != nil {
		return err
	}
	if b.Streams != nil {
		return j.archiveSet(ctx, log, t, b, res)
	}
	defer b.Body.Close()
	meta := b.Meta
	res.Backup = meta.Backup
	log = log.With().Str("backup", res.Backup).Logger()
	where := whereOf(t, res.Backup)
	body, header, err := checkHeader(b.Body, b.Size, where)
	if err != nil {
		return err
	}
	logDownload(log, b.Size, header)
	ds, err := j.stages(body, b.Size, 1)
	if err != nil {
		return fmt.Errorf("archive: encrypt %s: %w", where, err)
	}
	defer ds.checked.stop()
	res.Key = j.key(meta)
	obj := store.Object{Key: res.Key, Size: ds.size, ContentType: "application/octet-stream"}
	dec := j.classify(ctx, log, meta, res, &obj)
	started := j.now()
	d := j.upload(ctx, log, t, res.Backup, obj, ds.stored)
	res.Copies = d.copies
	if err := d.failed(where); err != nil {
		res.setLocation()
		return err
	}
	res.AlreadyArchived = d.everywhere()
	if !ds.complete() {
		// The stores found the object before reading everything, or failed: no full hash to
		// write a manifest with.
		res.Bytes = max(ds.size, ds.stored.n.Load())
		res.setLocation()
		return copiesErr(where, res.Copies)
	}
	res.Bytes, res.SHA256 = ds.stored.n.Load(), ds.stored.sum()
	if meta.FinishedAt.IsZero() {
		meta.FinishedAt = j.now()
	}
	j.logUploaded(log, res, started, ds.checked)
	// Written even when the dump was already there: an earlier run may have stopped between the two.
	m := j.manifest(log, meta, header, ds, res)
	// The dumps are committed: their manifests and markers are written even when the run is
	// being stopped (SIGTERM), for a few seconds more. A dump left without its manifest cannot
	// be checked, and one from pg_dump, whose key no later run meets again, would stay so.
	fctx, cancel := outlive(ctx, j.commitLimit())
	defer cancel()
	j.emit(Event{Kind: Phase, Target: t, Label: res.Backup, Phase: PhaseManifest})
	if err := j.writeManifests(ctx, fctx, m, obj.Tags, res, []string{res.Key}); err != nil {
		return fmt.Errorf("archive: manifest %s: %w", where, err)
	}
	j.emit(Event{Kind: Phase, Target: t, Label: res.Backup, Phase: PhaseMarkers})
	j.writeMarkers(fctx, log, dec, res.Key, res.Copies)
	res.setLocation()
	return copiesErr(where, res.Copies)
}

// whereOf names a target's backup in errors.
func whereOf(t Target, backup string) string {
	if t.Env {
		return fmt.Sprintf("target=%s backup=%s", t, backup)
	}
	return fmt.Sprintf("app=%s database=%s backup=%s", t.App, t.Database, backup)
}

// logDownload says what the header told, before the first byte is stored.
func logDownload(log zerolog.Logger, size int64, h pgdump.Header) {
	ev := log.Info()
	if size >= 0 {
		ev = ev.Int64("bytes", size)
	}
	ev.Str("pg_dump_version", h.DumpVersion).Str("server_version", h.ServerVersion).
		Str("compression", h.Compression).Msg("download started")
}

// key is the dump's key: catalog.Key, ending .age when encrypted.
func (j *Job) key(meta catalog.Meta) string {
	if j.Encrypt != nil {
		return catalog.Key(meta) + catalog.EncryptedSuffix
	}
	return catalog.Key(meta)
}

// logUploaded says that this run stored the archive (not when an earlier run had), and where
// when only some copies were stored: never "finished" for an upload that failed.
func (j *Job) logUploaded(log zerolog.Logger, res *Result, started time.Time, checked *checkedReader) {
	if res.AlreadyArchived {
		return
	}
	var stored, failed []string
	for _, c := range res.Copies {
		switch {
		case c.Err != nil:
			failed = append(failed, c.Destination)
		case !c.AlreadyArchived:
			stored = append(stored, c.Destination)
		}
	}
	if len(stored) == 0 {
		return // every copy failed: the target's failure says so, and why
	}
	ev := log.Info()
	if len(failed) > 0 {
		ev = log.Warn().Strs("copies_stored", stored).Strs("copies_failed", failed)
	}
	ev = ev.Int64("bytes", res.Bytes).Str("rate", units.Rate(res.Bytes, j.now().Sub(started)))
	if checked != nil {
		// How long the download waited for decompression: what the check cost in time.
		ev = ev.Str("check_waited", checked.chk.Held().Round(time.Millisecond).String())
	}
	if len(failed) > 0 {
		ev.Msg(fmt.Sprintf("upload stored at %d of %d destinations; the others failed", len(stored), len(res.Copies)))
		return
	}
	ev.Msg("upload finished")
}

// upload streams the archive through the tee stage with its progress reported, and says how
// each destination's copy went.
func (j *Job) upload(ctx context.Context, log zerolog.Logger, t Target, backup string, obj store.Object, m *meter) delivery {
	label := backup
	if j.Parallel > 1 {
		label = t.String() + " " + backup // several lines share the terminal: say whose
	}
	stop := j.reportTransfer(log, m, Event{Target: t, Label: label, Total: obj.Size})
	d := j.send(ctx, log, obj, m)
	stop()
	for _, c := range d.copies {
		j.emit(Event{Kind: Finished, Target: t, Label: label, Destination: c.Destination, Bytes: m.n.Load(), Total: obj.Size, Err: c.Err})
	}
	return d
}

// timing shortens the job's bounds in tests.
type timing struct {
	detach time.Duration // a destination taking no bytes: detachAfter
	stop   time.Duration // a destination told to stop: stopGrace
	commit time.Duration // the manifests after an interruption: commitGrace
}

// commitGrace is how long the manifests and markers of committed dumps (and the removal of a
// dump whose manifest failed) may go on after the run is interrupted.
const commitGrace = 5 * time.Second

func (j *Job) detachLimit() time.Duration { return cmp.Or(j.timing.detach, detachAfter) }
func (j *Job) stopLimit() time.Duration   { return cmp.Or(j.timing.stop, stopGrace) }
func (j *Job) commitLimit() time.Duration { return cmp.Or(j.timing.commit, commitGrace) }

// setLocation names, for the one-line outcome, the first copy that exists.
func (r *Result) setLocation() {
	for _, c := range r.Copies {
		if c.Err == nil {
			r.Location = c.Location
			return
		}
	}
	if len(r.Copies) > 0 {
		r.Location = r.Copies[0].Location
	}
}

// Status is the copy's outcome in a word: archived, already archived or failed.
func (c Copy) Status() string {
	switch {
	case c.Err != nil:
		return "failed"
	case c.AlreadyArchived:
		return "already archived"
	}
	return "archived"
}

// Decompressed says how much of an archive's compressed data its check decompressed, e.g.
// "412.0 MiB of 1.00 GiB of compressed data (40.2%)".
func Decompressed(s pgdump.Summary) string {
	return fmt.Sprintf("%s of %s of compressed data (%.1f%%)", units.IEC(s.InflatedDataBytes),
		units.IEC(s.CompressedDataBytes), s.InflatedPercent())
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Job) progressEvery() time.Duration {
	if j.ProgressEvery > 0 {
		return j.ProgressEvery
	}
	return 30 * time.Second
}
