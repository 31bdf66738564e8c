// Package archive is the backup job: for each target it takes a backup from a Source, checks it
// as it streams (header before the first byte is stored, structure, SHA-256) into a Store, and
// writes a manifest beside it.
package archive

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
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

// EncryptedSuffix ends the key of an encrypted dump: <...>.dump.age, as the age tool names its files.
const EncryptedSuffix = ".age"

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
	// Live, when set (a terminal, as under `heroku run`), gets a progress line redrawn each second:
	// one line for every target streaming at once.
	Live io.Writer
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

	liveOnce sync.Once
	live     *liveLine
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

func (j *Job) archive(ctx context.Context, log zerolog.Logger, t Target, res *Result) error {
	b, err := j.Source.Open(ctx, t)
	if err != nil {
		return err
	}
	defer b.Body.Close()
	meta, size := b.Meta, b.Size
	res.Backup = meta.Backup
	log = log.With().Str("backup", res.Backup).Logger()
	where := fmt.Sprintf("target=%s backup=%s", t, res.Backup)
	if !t.Env {
		where = fmt.Sprintf("app=%s database=%s backup=%s", t.App, t.Database, res.Backup)
	}

	// Look at the archive header before anything is uploaded: an error page must never land as a dump.
	br := bufio.NewReaderSize(b.Body, 64<<10)
	peekLen := int64(4096)
	if size >= 0 {
		peekLen = min(size, peekLen)
	}
	peek, perr := br.Peek(int(peekLen))
	header, err := pgdump.ReadHeader(bytesReader(peek))
	if err != nil {
		if perr != nil && perr != io.EOF && perr != bufio.ErrBufferFull {
			// The source failed before a header arrived: its own words say more than the format.
			return fmt.Errorf("archive: read %s: %w", where, perr)
		}
		return fmt.Errorf("archive: check download %s: %w", where, err)
	}
	ev := log.Info()
	if size >= 0 {
		ev = ev.Int64("bytes", size)
	}
	ev.Str("pg_dump_version", header.DumpVersion).Str("server_version", header.ServerVersion).
		Str("compression", header.Compression).Msg("download started")

	key := Key(meta)
	if j.Encrypt != nil {
		key += EncryptedSuffix
	}
	res.Key = key
	// One pass of SHA-256 over what is stored; a second over the plaintext only when they differ
	// (encrypted). SHA-256 is most of what the job itself spends CPU on.
	storedHash := sha256.New()
	var plainHash hash.Hash
	var stream io.Reader = br
	if j.Encrypt != nil {
		plainHash = sha256.New()
		stream = io.TeeReader(br, plainHash)
	}
	// The archive is checked as it streams: a damaged one fails the upload before the object
	// becomes visible.
	var checked *checkedReader
	if j.Check != CheckHeader {
		// An unknown size counts as large: the check may then fall back to framing only.
		chkSize := max(size, 0)
		checked = &checkedReader{r: stream, chk: pgdump.NewChecker(pgdump.Options{KeepUp: j.Check != CheckFull, Size: chkSize, Allowance: j.checkAllowance, Share: j.Parallel})}
		defer checked.stop()
		stream = checked
	}
	plain := &countingReader{r: stream}
	stream, storedSize := io.Reader(plain), size
	if j.Encrypt != nil {
		// Encrypted after the check: the checks read the plaintext, the stores only ciphertext.
		// A check that fails is a read error here, and the ciphertext then never gets its final
		// chunk: no store makes it visible, and no cut-short copy could ever decrypt as whole.
		if stream, storedSize, err = j.Encrypt.EncryptReader(stream, size); err != nil {
			return fmt.Errorf("archive: encrypt %s: %w", where, err)
		}
	}
	obj := store.Object{Key: key, Size: storedSize, ContentType: "application/octet-stream"}
	var dec retention.Decision
	if j.Retention.Set() {
		// Decided before the upload: the class is a tag set by the request that creates the object.
		dec = j.decideRetention(ctx, log, meta)
		res.Retention = string(dec.Class)
		obj.Tags = map[string]string{retention.TagKey: res.Retention}
	}
	counter := &countingReader{r: io.TeeReader(stream, storedHash)}
	label := res.Backup
	if j.Parallel > 1 {
		label = t.String() + " " + res.Backup // several lines share the terminal: say whose
	}
	stop := j.reportTransfer(log, counter, storedSize, label)
	started := j.now()
	errs := j.putAll(ctx, obj, counter)
	stop()
	var existing int
	res.Copies, existing = copies(log, j.Destinations, key, errs, counter.err)
	if counter.err != nil && existing == 0 {
		res.setLocation()
		return fmt.Errorf("archive: upload %s: %w", where, counter.err)
	}
	res.AlreadyArchived = existing == len(j.Destinations)
	n := counter.n.Load()
	if !counter.eof.Load() || (storedSize >= 0 && n != storedSize) {
		// The stores found the object before reading everything, or failed: no full hash to
		// write a manifest with.
		res.Bytes = max(storedSize, n)
		res.setLocation()
		return copiesErr(where, res.Copies)
	}
	res.Bytes = n
	res.SHA256 = hex.EncodeToString(storedHash.Sum(nil))
	if meta.FinishedAt.IsZero() {
		meta.FinishedAt = j.now()
	}
	if !res.AlreadyArchived {
		ev := log.Info().Int64("bytes", n).Str("rate", units.Rate(n, j.now().Sub(started)))
		if checked != nil {
			// How long the download waited for decompression: what the check cost in time.
			ev = ev.Str("check_waited", checked.chk.Held().Round(time.Millisecond).String())
		}
		ev.Msg("upload finished")
	}
	// Written even when the dump was already there: an earlier run may have stopped between the two.
	m := j.manifest(meta, header, res)
	if j.Encrypt != nil {
		m.Encryption = &Encryption{Format: "age", Recipients: j.Encrypt.Describe(),
			PlaintextBytes: plain.n.Load(), PlaintextSHA256: hex.EncodeToString(plainHash.Sum(nil))}
	}
	if checked != nil && checked.summary != nil {
		sum := checked.summary
		m.Structure = sum
		if names := sum.FramingOnly(); (len(names) > 0 || sum.OtherFramingOnly > 0) && !res.AlreadyArchived {
			res.FramingOnly, res.OtherFramingOnly, res.Decompressed = names, sum.OtherFramingOnly, Decompressed(*sum)
			log.Info().Strs("tables", names).Int("large_objects_and_other_data", sum.OtherFramingOnly).
				Str("decompressed", res.Decompressed).
				Str("hint", "ARCHIVE_CHECK=full decompresses every block at the cost of speed; pgoffsite verify does it later").
				Msg("the download outran decompression: this data was checked for framing, not decompressed")
		}
	}
	m.Retention = res.Retention
	if len(res.Copies) > 1 {
		// With one destination the manifest stays as it always was.
		for _, c := range res.Copies {
			m.Copies = append(m.Copies, CopyStatus{Destination: c.Destination, Status: c.Status()})
		}
	}
	blob, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: manifest %s: %w", where, err)
	}
	// The dumps are committed: their manifests and markers are written even when the run is
	// being stopped (SIGTERM), for a few seconds more. A dump left without its manifest cannot
	// be checked, and one from pg_dump, whose key no later run meets again, would stay so.
	fctx, cancel := outlive(ctx, j.commitLimit())
	defer cancel()
	// The manifest carries the dump's tag, so that it expires with the dump.
	mobj := store.Object{Key: ManifestKey(key), Size: int64(len(blob)), ContentType: "application/json", Tags: obj.Tags}
	merrs := make([]error, len(j.Destinations))
	var wg sync.WaitGroup
	for i, d := range j.Destinations {
		if res.Copies[i].Err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Store.Put(fctx, mobj, bytesReader(blob)); err != nil && !errors.Is(err, store.ErrExists) {
				merrs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, d := range j.Destinations {
		if merrs[i] != nil {
			res.Copies[i].Err = j.withoutManifest(ctx, d, res.Copies[i], key, merrs[i])
		}
	}
	j.writeMarkers(fctx, log, dec, key, res.Copies)
	res.setLocation()
	return copiesErr(where, res.Copies)
}

// withoutManifest deals with a dump stored at d whose manifest could not be written, and
// returns the copy's error. A dump this run stored is removed where the destination may delete
// (the next run archives the backup again); elsewhere, and for a dump an earlier run stored, the
// error names where it stays.
func (j *Job) withoutManifest(ctx context.Context, d Destination, c Copy, key string, merr error) error {
	if c.AlreadyArchived {
		return fmt.Errorf("write manifest (the dump itself, stored by an earlier run, is at %s): %w", c.Location, merr)
	}
	if d.Remove != nil {
		rctx, cancel := outlive(ctx, j.commitLimit())
		defer cancel()
		rerr := d.Remove.Remove(rctx, key)
		if rerr == nil {
			return fmt.Errorf("write manifest: %w; the dump was removed again from %s, since a dump without its manifest cannot be checked (the next run archives the backup again)", merr, c.Location)
		}
		merr = fmt.Errorf("%w; removing the dump failed too: %w", merr, rerr)
	}
	return fmt.Errorf("write manifest: %w; the dump stays at %s without a manifest: pgoffsite status and verify report it "+
		"as a problem until it is deleted there with credentials that may delete (the uploader's may not)", merr, c.Location)
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

// copies is each destination's outcome of one Put of key: errs are the stores' answers, and
// streamErr the stream's own failure (the source, or the check), which every store then
// refused for the same reason, to be said once by the caller. existing counts the destinations
// that already held the object.
func copies(log zerolog.Logger, dests []Destination, key string, errs []error, streamErr error) (out []Copy, existing int) {
	out = make([]Copy, len(dests))
	for i, d := range dests {
		c := Copy{Destination: d.Name, Location: d.Store.Location(key)}
		switch {
		case errors.Is(errs[i], store.ErrExists):
			c.AlreadyArchived = true
			existing++
		case streamErr != nil:
			c.Err = streamErr
		case errs[i] != nil:
			c.Err = fmt.Errorf("upload: %w", errs[i])
			switch {
			case stalled(errs[i]):
				msg := "the destination stopped answering: its copy was given up"
				if len(dests) > 1 {
					msg += " (the other destinations go on)"
				}
				log.Warn().Str("destination", d.Name).Err(errs[i]).
					Str("hint", "check that "+d.Name+" is up and reachable from the dyno (its server, endpoint, network and firewall); the next run writes there again").
					Msg(msg)
			case len(dests) > 1:
				log.Warn().Str("destination", d.Name).Err(errs[i]).Msg("copy failed (the other destinations go on)")
			}
		}
		out[i] = c
	}
	return out, existing
}

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

// manifest describes the archive: neutral fields from the source's Meta, and for a Heroku
// database the same top-level fields as archives made before sources were separate, so that
// verify and people's scripts read old and new alike.
func (j *Job) manifest(meta Meta, h pgdump.Header, res *Result) Manifest {
	origin := meta.Origin
	m := Manifest{
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
	}
	if hk := origin.Heroku; hk != nil {
		m.Addon, m.BillingApp, m.Plan, m.TransferUUID = hk.Addon, hk.BillingApp, hk.Plan, hk.TransferUUID
	}
	return m
}

// reportTransfer logs bytes, rate and ETA at a steady interval, and redraws a live line on a
// terminal each second, until the returned stop is called.
func (j *Job) reportTransfer(log zerolog.Logger, c *countingReader, size int64, label string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	started := j.now()
	var board *liveLine
	if j.Live != nil {
		j.liveOnce.Do(func() { j.live = &liveLine{w: j.Live} })
		board = j.live
	}
	slot := board.join()
	go func() {
		defer close(finished)
		every := j.progressEvery()
		tick := time.NewTicker(min(every, time.Second))
		defer tick.Stop()
		lastLog := started
		for {
			select {
			case <-done:
				board.leave(slot)
				return
			case <-tick.C:
				n := c.n.Load()
				now := j.now()
				elapsed := now.Sub(started)
				eta := "?"
				if size >= 0 && n > 0 && n < size {
					eta = time.Duration(float64(elapsed) * float64(size-n) / float64(n)).Round(time.Second).String()
				}
				if board != nil {
					if size >= 0 {
						board.set(slot, fmt.Sprintf("%s  %s / %s  %3.0f%%  %s  ETA %s", label, units.IEC(n), units.IEC(size),
							100*float64(n)/float64(max(size, 1)), units.Rate(n, elapsed), eta))
					} else {
						board.set(slot, fmt.Sprintf("%s  %s  %s", label, units.IEC(n), units.Rate(n, elapsed)))
					}
				}
				if now.Sub(lastLog) >= every {
					lastLog = now
					ev := log.Info().Int64("bytes", n)
					if size >= 0 {
						ev = ev.Int64("total", size).Str("eta", eta)
					}
					ev.Str("rate", units.Rate(n, elapsed)).Msg("transfer in progress")
				}
			}
		}
	}()
	return func() { close(done); <-finished }
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

// checkedReader feeds what it reads to the archive checker and, at the end of the stream,
// returns the checker's verdict instead of io.EOF when the archive is damaged.
type checkedReader struct {
	r       io.Reader
	chk     *pgdump.Checker
	summary *pgdump.Summary
	err     error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if _, werr := c.chk.Write(p[:n]); werr != nil {
			c.err = fmt.Errorf("the archive is damaged: %w", werr)
			return 0, c.err
		}
	}
	if err == io.EOF {
		sum, cerr := c.chk.Close()
		if cerr != nil {
			c.err = fmt.Errorf("the archive is damaged: %w", cerr)
			return n, c.err
		}
		c.summary = &sum
	}
	return n, err
}

// stop ends the check, which waits for more input until closed, when the upload stopped early.
func (c *checkedReader) stop() { _, _ = c.chk.Close() }

type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	eof atomic.Bool // the stream ended well: the hash covers all of it
	err error       // why it ended otherwise; read only after the stores returned
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	switch {
	case err == io.EOF:
		c.eof.Store(true)
	case err != nil:
		c.err = err
	}
	return n, err
}

// decideRetention gives the archive its class from the first destination that can tell which
// periods already have an archive; the other copies get the same class, so that every copy of
// one backup is kept alike. When none can tell, the archive gets the longest class listed: a
// period is never lost, at the cost of keeping this archive longer.
func (j *Job) decideRetention(ctx context.Context, log zerolog.Logger, meta Meta) retention.Decision {
	at := meta.FinishedAt
	if at.IsZero() {
		at = meta.At // a dump's start time: it finishes only after the upload
	}
	zone := j.RetentionZone
	if zone == nil {
		zone = time.UTC
	}
	db := KeyDatabase(meta.Database)
	var failed []string
	for _, d := range j.Destinations {
		if d.Markers == nil {
			continue
		}
		dec, err := j.Retention.Decide(ctx, d.Markers, meta.App, db, at, zone)
		if err == nil {
			return dec
		}
		failed = append(failed, d.Name)
		log.Warn().Str("destination", d.Name).Err(err).Msg("cannot read the retention markers there")
	}
	dec := j.Retention.Longest(meta.App, db, at, zone)
	log.Warn().Strs("destinations", failed).Str("retention", string(dec.Class)).
		Str("hint", "fix what the warning of each destination above says; for an S3 destination, `pgoffsite check` names the permission its keys lack").
		Msg("no destination could tell whether this period already has an archive: it is kept as the longest class so that no period is lost")
	return dec
}

// writeMarkers records, at every destination that holds markers and has the archive, that the
// archive's periods have one. They are written only now, after the archive is stored: a run
// that dies before leaves the period open for the next archive, never a period without one.
// Markers are created, never overwritten; a marker that exists already (two runs at once) is
// fine. A marker that cannot be written is a warning: the next archive of the period then gets
// the class too.
func (j *Job) writeMarkers(ctx context.Context, log zerolog.Logger, dec retention.Decision, key string, copies []Copy) {
	if len(dec.Markers) == 0 {
		return
	}
	body, _ := json.Marshal(map[string]string{"key": key, "retention": string(dec.Class)})
	for i, d := range j.Destinations {
		if d.Markers == nil || copies[i].Err != nil {
			continue
		}
		for _, mk := range dec.Markers {
			err := d.Store.Put(ctx, store.Object{Key: mk, Size: int64(len(body)), ContentType: "application/json"}, bytesReader(body))
			if err != nil && !errors.Is(err, store.ErrExists) {
				log.Warn().Str("destination", d.Name).Str("marker", mk).Err(err).
					Msg("cannot write the retention marker: the next archive of this period is kept as long as this one")
			}
		}
	}
}
