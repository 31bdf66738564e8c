// Package pgbackups is the source of Heroku's own backups: it resolves a target with the
// Platform API, takes a new capture or the newest existing backup, waits for it, and opens it
// from its signed URL with a ranged download that renews the URL as it expires.
package pgbackups

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Modes of getting a backup.
const (
	ModeCapture = "capture" // ask Heroku for a new backup
	ModeLatest  = "latest"  // archive the newest successful backup Heroku already has
)

// Heroku is what the source needs from Heroku.
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

// Source yields Heroku backups.
type Source struct {
	Heroku         Heroku
	Download       Downloader
	Mode           string
	MaxAge         time.Duration // latest mode: refuse an older backup
	CaptureTimeout time.Duration
	Now            func() time.Time
	// ProgressEvery is the interval of progress lines while a capture runs.
	ProgressEvery time.Duration
}

var _ archive.Source = (*Source)(nil)

// Open resolves t, gets its backup and opens the download. It logs through the logger in ctx.
func (s *Source) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	log := zerolog.Ctx(ctx).With().Logger()
	log.Info().Str("mode", s.Mode).Msg("taking a Heroku backup")
	db, err := s.Heroku.Resolve(ctx, t.App, t.Database)
	if err != nil {
		return archive.Backup{}, err
	}
	log = log.With().Str("addon", db.AddonName).Logger()
	backup, err := s.backup(ctx, log, db)
	if err != nil {
		return archive.Backup{}, err
	}
	name := backup.Name()
	log = log.With().Str("backup", name).Logger()

	var urls atomic.Int32
	publicURL := func(ctx context.Context) (string, time.Time, error) {
		if urls.Add(1) > 1 {
			log.Info().Msg("renewing the backup's download URL")
		}
		signed, err := s.Heroku.PublicURL(ctx, db, backup)
		return signed.URL.Reveal(), signed.ExpiresAt, err
	}
	body, size, err := s.Download.Open(ctx, publicURL)
	if err != nil {
		return archive.Backup{}, fmt.Errorf("archive: download app=%s database=%s backup=%s: %w", t.App, t.Database, name, err)
	}
	if backup.ProcessedBytes > 0 && backup.ProcessedBytes != size {
		// Unverified whether processed_bytes always equals the stored object's size: note, don't fail.
		log.Warn().Int64("heroku_bytes", backup.ProcessedBytes).Int64("download_bytes", size).Msg("download size differs from Heroku's processed_bytes")
	}
	return archive.Backup{Meta: Meta(db, backup, s.Mode), Body: body, Size: size}, nil
}

// Meta describes a Heroku backup for the key and the manifest: the key is the one archives have
// had from the start, <app>/<ATTACHMENT>/…/<app>-<ATTACHMENT>-<backup>-<finished>.dump.
func Meta(db heroku.Database, b heroku.Transfer, mode string) catalog.Meta {
	at := b.FinishedAt.UTC()
	if at.IsZero() {
		at = b.CreatedAt.UTC()
	}
	return catalog.Meta{
		App: db.App, Database: db.Attachment, Backup: b.Name(), At: at,
		CreatedAt: b.CreatedAt.Time, FinishedAt: b.FinishedAt.Time, Mode: mode,
		Origin: catalog.Origin{Source: "pgbackups", Heroku: &catalog.HerokuOrigin{
			App: db.App, Attachment: db.Attachment, Addon: db.AddonName, BillingApp: db.BillingApp, Plan: db.Plan, TransferUUID: b.UUID,
		}},
	}
}

// backup returns the Heroku backup to archive: a new capture, or the newest existing one.
func (s *Source) backup(ctx context.Context, log zerolog.Logger, db heroku.Database) (heroku.Transfer, error) {
	if s.Mode == ModeLatest {
		b, err := s.Heroku.Latest(ctx, db)
		if err != nil {
			return b, err
		}
		age := s.now().Sub(b.FinishedAt.Time)
		if s.MaxAge > 0 && age > s.MaxAge {
			return b, fmt.Errorf("archive: latest backup app=%s database=%s: the newest successful backup, %s, finished %s ago (at %s), older than BACKUP_MAX_AGE=%s: check that Heroku's backup schedule runs (heroku pg:backups:schedules -a %s), or use BACKUP_MODE=capture",
				db.App, db.Attachment, b.Name(), age.Round(time.Minute), b.FinishedAt.UTC().Format(time.RFC3339), s.MaxAge, db.App)
		}
		log.Info().Str("backup", b.Name()).Str("finished_at", b.FinishedAt.UTC().Format(time.RFC3339)).
			Str("age", age.Round(time.Second).String()).Msg("using latest backup")
		return b, nil
	}

	b, err := s.Heroku.Capture(ctx, db)
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
	b, err = s.Heroku.Wait(ctx, db, b, s.CaptureTimeout, func(p heroku.Transfer, perr error) {
		if perr != nil {
			// Each such poll has already spent its retries, so these lines come minutes apart.
			log.Warn().Err(perr).Str("backup", p.Name()).Str("capture_timeout", s.CaptureTimeout.String()).
				Msg("Heroku did not answer a poll of the capture; still waiting, up to BACKUP_CAPTURE_TIMEOUT")
			return
		}
		if now := s.now(); now.Sub(last) >= s.progressEvery() {
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
			if c, ok := s.Heroku.(canceler); ok {
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

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) progressEvery() time.Duration {
	if s.ProgressEvery > 0 {
		return s.ProgressEvery
	}
	return 30 * time.Second
}
