// Package archive is the backup job: for each target it gets a Heroku backup (a new capture or
// the newest existing one), streams it from its signed URL into a Store, and writes a manifest
// beside it.
package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Modes of getting a backup.
const (
	ModeCapture = "capture" // ask Heroku for a new backup
	ModeLatest  = "latest"  // archive the newest successful backup Heroku already has
)

// Heroku is what the job needs from Heroku.
type Heroku interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	Capture(ctx context.Context, db heroku.Database) (heroku.Transfer, error)
	Wait(ctx context.Context, db heroku.Database, t heroku.Transfer, timeout time.Duration, progress func(heroku.Transfer, error)) (heroku.Transfer, error)
	Latest(ctx context.Context, db heroku.Database) (heroku.Transfer, error)
	PublicURL(ctx context.Context, db heroku.Database, t heroku.Transfer) (heroku.SignedURL, error)
}

// canceler stops a running capture on Heroku (used when our deadline passes).
type canceler interface {
	Cancel(ctx context.Context, db heroku.Database, t heroku.Transfer) error
}

// Downloader reads a backup from its signed URL and tells its exact length. It calls url for the
// first URL and again whenever that one expires.
type Downloader interface {
	Open(ctx context.Context, url fetch.URLFunc) (io.ReadCloser, int64, error)
}

// Target is one database to archive, named as the user named it.
type Target struct {
	App      string
	Database string
}

func (t Target) String() string { return t.App + ":" + t.Database }

// Result is what happened to one target.
type Result struct {
	Target          Target
	Backup          string // e.g. b042
	Bytes           int64
	SHA256          string
	Key             string // the dump's key in the store
	Location        string // where people find it
	AlreadyArchived bool   // an earlier run archived this very backup
	// FramingOnly names (schema.name) the tables that ARCHIVE_CHECK=auto checked for framing
	// only, not decompressed, and OtherFramingOnly counts the large objects and other data it
	// did so with: damage inside them is found by pgoffsite verify, not by this run.
	FramingOnly      []string
	OtherFramingOnly int
	Duration         time.Duration
	Err              error
}

// PartlyChecked reports whether part of the archive was checked for framing only.
func (r Result) PartlyChecked() bool { return len(r.FramingOnly) > 0 || r.OtherFramingOnly > 0 }

// Job archives targets.
type Job struct {
	Heroku         Heroku
	Download       Downloader
	Store          store.Store
	Mode           string
	MaxAge         time.Duration // latest mode: refuse an older backup
	CaptureTimeout time.Duration
	Version        string
	Log            zerolog.Logger
	Now            func() time.Time
	// ProgressEvery is the interval of progress lines while a capture runs or bytes stream.
	ProgressEvery time.Duration
	// Live, when set (a terminal, as under `heroku run`), gets a progress line redrawn each second.
	Live io.Writer
	// Check is how much of the archive is checked while it streams; empty means CheckAuto.
	Check string

	checkAllowance func(time.Duration) time.Duration // for tests; nil means pgdump.DefaultAllowance
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

// Run archives every target in turn; one failing does not stop the others.
func (j *Job) Run(ctx context.Context, targets []Target) []Result {
	results := make([]Result, 0, len(targets))
	for i, t := range targets {
		if i > 0 {
			// Each target allocates its part buffers anew; the previous target's are garbage by
			// now, but the runtime would let the heap grow to twice the live size before collecting
			// them, so peak memory would climb with the number of targets. Returning them to the
			// system between targets keeps a run of thirty databases at one database's peak.
			debug.FreeOSMemory()
		}
		results = append(results, j.Archive(ctx, t))
	}
	return results
}

// Archive archives one target.
func (j *Job) Archive(ctx context.Context, t Target) Result {
	start := j.now()
	log := j.Log.With().Str("app", t.App).Str("database", t.Database).Logger()
	ctx = log.WithContext(ctx) // the download and the store warn of stalls through it
	log.Info().Str("mode", j.Mode).Msg("target started")
	res := Result{Target: t}
	err := j.archive(ctx, log, t, &res)
	res.Duration = j.now().Sub(start)
	if err != nil {
		res.Err = err
		return res
	}
	ev := log.Info().Str("backup", res.Backup).Int64("bytes", res.Bytes).Str("sha256", res.SHA256).
		Str("location", res.Location).Str("duration", res.Duration.Round(time.Millisecond).String())
	if res.AlreadyArchived {
		ev.Msg("target already archived by an earlier run")
	} else {
		ev.Msg("target archived")
	}
	return res
}

func (j *Job) archive(ctx context.Context, log zerolog.Logger, t Target, res *Result) error {
	db, err := j.Heroku.Resolve(ctx, t.App, t.Database)
	if err != nil {
		return err
	}
	log = log.With().Str("addon", db.AddonName).Logger()
	backup, err := j.backup(ctx, log, db)
	if err != nil {
		return err
	}
	res.Backup = backup.Name()
	log = log.With().Str("backup", res.Backup).Logger()

	var urls atomic.Int32
	publicURL := func(ctx context.Context) (string, time.Time, error) {
		if urls.Add(1) > 1 {
			log.Info().Msg("renewing the backup's download URL")
		}
		signed, err := j.Heroku.PublicURL(ctx, db, backup)
		return signed.URL.Reveal(), signed.ExpiresAt, err
	}
	body, size, err := j.Download.Open(ctx, publicURL)
	if err != nil {
		return fmt.Errorf("archive: download app=%s database=%s backup=%s: %w", t.App, t.Database, res.Backup, err)
	}
	defer body.Close()
	if backup.ProcessedBytes > 0 && backup.ProcessedBytes != size {
		// Unverified whether processed_bytes always equals the stored object's size: note, don't fail.
		log.Warn().Int64("heroku_bytes", backup.ProcessedBytes).Int64("download_bytes", size).Msg("download size differs from Heroku's processed_bytes")
	}

	// Look at the archive header before anything is uploaded: an error page must never land as a dump.
	br := bufio.NewReaderSize(body, 64<<10)
	peek, _ := br.Peek(int(min(size, 4096)))
	header, err := pgdump.ReadHeader(bytesReader(peek))
	if err != nil {
		return fmt.Errorf("archive: check download app=%s database=%s backup=%s: %w", t.App, t.Database, res.Backup, err)
	}
	log.Info().Int64("bytes", size).Str("pg_dump_version", header.DumpVersion).Str("server_version", header.ServerVersion).
		Str("compression", header.Compression).Msg("download started")

	key := Key(db, backup)
	res.Key = key
	res.Location = j.Store.Location(key)
	hash := sha256.New()
	// The archive is checked as it streams: a damaged one fails the upload before the object
	// becomes visible.
	var stream io.Reader = io.TeeReader(br, hash)
	var checked *checkedReader
	if j.Check != CheckHeader {
		checked = &checkedReader{r: stream, chk: pgdump.NewChecker(pgdump.Options{KeepUp: j.Check != CheckFull, Size: size, Allowance: j.checkAllowance})}
		defer checked.stop()
		stream = checked
	}
	counter := &countingReader{r: stream}
	stop := j.reportTransfer(log, counter, size, res.Backup)
	started := j.now()
	err = j.Store.Put(ctx, store.Object{Key: key, Size: size, ContentType: "application/octet-stream"}, counter)
	stop()
	switch {
	case errors.Is(err, store.ErrExists):
		res.AlreadyArchived = true
	case err != nil:
		return fmt.Errorf("archive: upload app=%s database=%s backup=%s: %w", t.App, t.Database, res.Backup, err)
	}
	res.Bytes = size
	if counter.n.Load() != size {
		// The store found the object before reading everything: no full hash to write a manifest with.
		return nil
	}
	res.SHA256 = hex.EncodeToString(hash.Sum(nil))
	if !res.AlreadyArchived {
		ev := log.Info().Int64("bytes", size).Str("rate", Rate(size, j.now().Sub(started)))
		if checked != nil {
			// How long the download waited for decompression: what the check cost in time.
			ev = ev.Str("check_waited", checked.chk.Held().Round(time.Millisecond).String())
		}
		ev.Msg("upload finished")
	}
	// Written even when the dump was already there: an earlier run may have stopped between the two.
	m := j.manifest(db, backup, header, res)
	if checked != nil && checked.summary != nil {
		sum := checked.summary
		m.Structure = sum
		if names := sum.FramingOnly(); (len(names) > 0 || sum.OtherFramingOnly > 0) && !res.AlreadyArchived {
			res.FramingOnly, res.OtherFramingOnly = names, sum.OtherFramingOnly
			log.Info().Strs("tables", names).Int("large_objects_and_other_data", sum.OtherFramingOnly).
				Str("hint", "ARCHIVE_CHECK=full decompresses every block at the cost of speed; pgoffsite verify does it later").
				Msg("the download outran decompression: this data was checked for framing, not decompressed")
		}
	}
	blob, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: manifest app=%s database=%s: %w", t.App, t.Database, err)
	}
	mkey := ManifestKey(key)
	err = j.Store.Put(ctx, store.Object{Key: mkey, Size: int64(len(blob)), ContentType: "application/json"}, bytesReader(blob))
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("archive: write manifest app=%s database=%s backup=%s (the dump itself is at %s): %w",
			t.App, t.Database, res.Backup, res.Location, err)
	}
	return nil
}

// backup returns the Heroku backup to archive: a new capture, or the newest existing one.
func (j *Job) backup(ctx context.Context, log zerolog.Logger, db heroku.Database) (heroku.Transfer, error) {
	if j.Mode == ModeLatest {
		b, err := j.Heroku.Latest(ctx, db)
		if err != nil {
			return b, err
		}
		age := j.now().Sub(b.FinishedAt.Time)
		if j.MaxAge > 0 && age > j.MaxAge {
			return b, fmt.Errorf("archive: latest backup app=%s database=%s: the newest successful backup, %s, finished %s ago (at %s), older than BACKUP_MAX_AGE=%s: check that Heroku's backup schedule runs (heroku pg:backups:schedules -a %s), or use BACKUP_MODE=capture",
				db.App, db.Attachment, b.Name(), age.Round(time.Minute), b.FinishedAt.UTC().Format(time.RFC3339), j.MaxAge, db.App)
		}
		log.Info().Str("backup", b.Name()).Str("finished_at", b.FinishedAt.UTC().Format(time.RFC3339)).
			Str("age", age.Round(time.Second).String()).Msg("using latest backup")
		return b, nil
	}

	b, err := j.Heroku.Capture(ctx, db)
	if err != nil {
		return b, err
	}
	log.Info().Str("backup", b.Name()).Str("transfer_uuid", b.UUID).Msg("capture started")
	if r := b.Retention; r != nil && r.Full() {
		// Heroku makes room for this capture by deleting the user's oldest manual backup.
		log.Warn().Str("plan", db.Plan).Int("num_keep", r.NumKeep).Int("manual_backups", len(r.Manual)).
			Str("deleted_backup", r.Manual[0].Name()).Msg(r.Warning(db))
	}
	var last time.Time
	captured := b
	b, err = j.Heroku.Wait(ctx, db, b, j.CaptureTimeout, func(p heroku.Transfer, perr error) {
		if perr != nil {
			// Each such poll has already spent its retries, so these lines come minutes apart.
			log.Warn().Err(perr).Str("backup", p.Name()).Str("capture_timeout", j.CaptureTimeout.String()).
				Msg("Heroku did not answer a poll of the capture; still waiting, up to BACKUP_CAPTURE_TIMEOUT")
			return
		}
		if now := j.now(); now.Sub(last) >= j.progressEvery() {
			last = now
			ev := log.Info().Str("backup", p.Name()).Int64("processed_bytes", p.ProcessedBytes)
			if p.SourceBytes != nil {
				ev = ev.Int64("source_bytes", *p.SourceBytes)
			}
			ev.Bool("running", !p.StartedAt.IsZero()).Msg("capture in progress")
		}
	})
	if err != nil {
		if ctx.Err() == nil && !b.Finished() {
			// Our deadline passed, not Heroku's: stop the capture rather than leave it running.
			if c, ok := j.Heroku.(canceler); ok {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				if cerr := c.Cancel(cctx, db, captured); cerr != nil {
					err = fmt.Errorf("%w (cancelling it on Heroku failed too: %v)", err, cerr)
				} else {
					err = fmt.Errorf("%w; the capture was cancelled on Heroku (raise BACKUP_CAPTURE_TIMEOUT if this database needs longer)", err)
				}
			}
		}
		return b, err
	}
	log.Info().Str("backup", b.Name()).Int64("processed_bytes", b.ProcessedBytes).Msg("capture finished")
	return b, nil
}

func (j *Job) manifest(db heroku.Database, b heroku.Transfer, h pgdump.Header, res *Result) Manifest {
	m := Manifest{
		ManifestVersion:  1,
		App:              db.App,
		Database:         db.Attachment,
		Addon:            db.AddonName,
		BillingApp:       db.BillingApp,
		Plan:             db.Plan,
		Backup:           b.Name(),
		TransferUUID:     b.UUID,
		BackupCreatedAt:  b.CreatedAt.UTC(),
		BackupFinishedAt: b.FinishedAt.UTC(),
		Mode:             j.Mode,
		Bytes:            res.Bytes,
		SHA256:           res.SHA256,
		Key:              res.Key,
		ArchivedAt:       j.now().UTC().Truncate(time.Second),
		PgDump:           h,
		PgoffsiteVersion: j.Version,
	}
	return m
}

// reportTransfer logs bytes, rate and ETA at a steady interval, and redraws a live line on a
// terminal each second, until the returned stop is called.
func (j *Job) reportTransfer(log zerolog.Logger, c *countingReader, size int64, backup string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	started := j.now()
	go func() {
		defer close(finished)
		every := j.progressEvery()
		tick := time.NewTicker(min(every, time.Second))
		defer tick.Stop()
		lastLog := started
		for {
			select {
			case <-done:
				if j.Live != nil {
					fmt.Fprint(j.Live, "\r\033[K")
				}
				return
			case <-tick.C:
				n := c.n.Load()
				now := j.now()
				elapsed := now.Sub(started)
				eta := "?"
				if n > 0 && n < size {
					eta = time.Duration(float64(elapsed) * float64(size-n) / float64(n)).Round(time.Second).String()
				}
				if j.Live != nil {
					fmt.Fprintf(j.Live, "\r\033[K%s  %s / %s  %3.0f%%  %s  ETA %s", backup, bytesIEC(n), bytesIEC(size),
						100*float64(n)/float64(max(size, 1)), Rate(n, elapsed), eta)
				}
				if now.Sub(lastLog) >= every {
					lastLog = now
					log.Info().Int64("bytes", n).Int64("total", size).Str("rate", Rate(n, elapsed)).Str("eta", eta).Msg("transfer in progress")
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// bytesIEC formats a byte count for people, e.g. "512.0 MiB".
func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
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

// Rate formats a transfer rate for people, e.g. "84.2 MB/s".
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	bps := float64(n) / d.Seconds()
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f MB/s", bps/1e6)
	default:
		return fmt.Sprintf("%.1f kB/s", bps/1e3)
	}
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
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
