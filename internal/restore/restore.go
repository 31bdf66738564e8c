// Package restore is the way back, `pgoffsite restore`: an archive into a Heroku database
// (Heroku restores it from a short-lived signed URL, or, when the archive is encrypted, it is
// decrypted here and streamed into pg_restore against the database), or into any Postgres
// through pg_restore, its size, SHA-256, structure and row counts checked against the manifest.
// A database that is not empty is refused unless the restore is told to clean it.
package restore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// HerokuAPI is what a restore into Heroku needs of the Platform and Data APIs (heroku.Client).
type HerokuAPI interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	DatabaseURL(ctx context.Context, db heroku.Database) (heroku.Secret, error)
	Restore(ctx context.Context, db heroku.Database, backupURL string) (heroku.Transfer, error)
	Wait(ctx context.Context, db heroku.Database, t heroku.Transfer, timeout time.Duration, progress func(heroku.Transfer, error)) (heroku.Transfer, error)
}

// Signer gives a short-lived URL of an archive that Heroku can download it from.
type Signer interface {
	SignedURL(ctx context.Context, key string) (string, error)
}

// Database is what a restore through pg_restore does with the target database.
type Database interface {
	// Objects lists what the database holds outside the system schemas (none: it is empty).
	Objects(ctx context.Context, url string) ([]string, error)
	// Restore streams the archive into the database, checking it against its manifest.
	Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result
}

// Postgres is the Database of a real restore: pgrestore's listing and verify.Archive's restore.
type Postgres struct{}

func (Postgres) Objects(ctx context.Context, url string) ([]string, error) {
	return pgrestore.Objects(ctx, pgrestore.Options{URL: url, Name: "restore"})
}

func (Postgres) Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result {
	return verify.Archive(ctx, src, key, o)
}

// Deps are what a restore works with; each way of restoring uses some of them.
type Deps struct {
	// Open opens the store the archive is read from (through pg_restore), once a restore knows
	// it will read it; its error says which store.
	Open     func(ctx context.Context) (verify.Source, error)
	Heroku   HerokuAPI // into Heroku
	Signer   Signer    // into Heroku from a URL
	Database Database  // through pg_restore
	Log      zerolog.Logger
	Redactor *logging.Redactor // learns the signed URL and the database's URL
}

// Options say what to restore.
type Options struct {
	From       string // the archive's key under ARCHIVE_URL
	Identities *agecrypt.Identities
	// CaptureTimeout bounds Heroku's restore (BACKUP_CAPTURE_TIMEOUT).
	CaptureTimeout time.Duration
	// Jobs is how many sessions restore through pg_restore at once (--jobs): a set's streams
	// in parallel, or, with Scratch, an archive of one stream staged for pg_restore -j. Above 1
	// the restore cannot be one transaction, so the database must be empty, and a failure
	// empties it again.
	Jobs int
	// Scratch is the local directory an archive of one stream is staged in for Jobs > 1.
	Scratch string
	// Explain adds the way out to an error reading the archive (one that lifecycle rules moved to
	// Glacier, say); nil leaves errors as they are.
	Explain func(err error, key string) error
}

func (o Options) explain(err error) error {
	if o.Explain == nil {
		return err
	}
	return o.Explain(err, o.From)
}

// IsPostgresURL tells a --to that names a database by URL from one that names a Heroku app.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// ToHeroku asks Heroku to restore the (unencrypted) archive into app's database from a signed
// URL of it, replacing what is there, and waits for the restore to finish.
func ToHeroku(ctx context.Context, d Deps, app, database string, o Options) error {
	signed, err := d.Signer.SignedURL(ctx, o.From)
	if err != nil {
		return err
	}
	if err := o.oneStream(ctx, d, app, database); err != nil {
		return err
	}
	d.Redactor.Add(signed)
	db, err := d.Heroku.Resolve(ctx, app, database)
	if err != nil {
		return err
	}
	t, err := d.Heroku.Restore(ctx, db, signed)
	if err != nil {
		return err
	}
	d.Log.Info().Str("restore", t.Name()).Str("addon", db.AddonName).Str("archive", o.From).Msg("restore started on Heroku")
	t, err = d.Heroku.Wait(ctx, db, t, o.CaptureTimeout, nil)
	if err != nil {
		return err
	}
	d.Log.Info().Str("restore", t.Name()).Int64("bytes", t.ProcessedBytes).Str("archive", o.From).Msg("restore finished: the database now holds the archive's data")
	return nil
}

// ToPostgres streams the archive from the store into pg_restore against to (no temporary file)
// while its size, SHA-256 and structure are checked; the restore commits only if they match,
// and then the database's row counts are compared with the archive's. A database that is not
// empty is refused unless clean, which drops and replaces the archive's objects there.
func ToPostgres(ctx context.Context, d Deps, to string, clean bool, o Options) error {
	u, err := url.Parse(to)
	if err != nil {
		return errors.New("restore: --to is not a valid database URL")
	}
	dbname := strings.TrimPrefix(u.Path, "/")
	if clean && o.Jobs > 1 {
		return fmt.Errorf("restore: --jobs %d restores in several sessions, which cannot be one transaction, so only into an empty database: nothing was read or changed; drop --clean and restore into an empty database (createdb NEW), or restore with --clean in one session (--jobs 1)", o.Jobs)
	}
	if !clean {
		objs, err := d.Database.Objects(ctx, to)
		if err != nil {
			return fmt.Errorf("restore: database %s on %s: %w; nothing was read or changed", dbname, u.Hostname(), err)
		}
		if len(objs) > 0 {
			if len(objs) > 10 {
				objs = append(objs[:10], "...")
			}
			return fmt.Errorf("restore: database %s is not empty (it holds %s): nothing was read or changed; restore into an empty database (createdb NEW), or add --clean --confirm %s to drop the archive's objects there and restore them",
				dbname, strings.Join(objs, ", "), emptyOr(dbname, o.Jobs))
		}
	}
	src, err := d.Open(ctx)
	if err != nil {
		return err
	}
	how := "restore started: streaming the archive into pg_restore"
	if catalog.IsEncrypted(o.From) {
		how = "restore started: decrypting the archive while it streams into pg_restore"
	}
	ev := d.Log.Info().Bool("clean", clean).Str("location", src.Location(o.From))
	if o.Jobs > 1 {
		how, err = o.sessions(ctx, d, src)
		if err != nil {
			return err
		}
	}
	ev.Msg(how)
	res := d.Database.Restore(ctx, src, o.From, verify.Options{RestoreTo: to, Clean: clean, Name: "restore", Identities: o.Identities,
		Jobs: o.Jobs, Scratch: o.Scratch})
	if res.Staged > 0 {
		d.Log.Info().Int64("staged_bytes", res.Staged).Str("scratch", o.Scratch).Msg("the staged copy of the archive was removed from the scratch directory")
	}
	if res.Err != nil {
		return o.failure(res, "restore again with --clean")
	}
	ev = d.Log.Info().Int("tables", res.Tables).Int64("rows", res.Rows).Int64("bytes", res.Manifest.StoredBytes())
	if s := res.Set; s != nil {
		ev = ev.Int("streams", s.Streams).Int("sessions", s.Sessions).Int("toc_bytes_in_memory", s.TOCBytes).Str("duration", s.Elapsed.Round(time.Millisecond).String())
	}
	ev.Msg("restore finished: size, SHA-256 and structure match the manifest, and every table's row count in the database matches it")
	return nil
}

// emptyOr is the way into a database that is not empty: with several sessions, only another,
// empty database; in one, also --clean.
func emptyOr(dbname string, jobs int) string {
	if jobs > 1 {
		return fmt.Sprintf("%s (--jobs %d restores in several sessions, so only into an empty database)", dbname, jobs)
	}
	return dbname
}

// sessions says how a restore with Jobs > 1 will go, from the archive's manifest (read before
// the archive): a set's streams in Jobs sessions; one stream staged in Scratch for pg_restore
// -j; or, without Scratch, one stream in one session, and how to get more.
func (o Options) sessions(ctx context.Context, d Deps, src verify.Source) (string, error) {
	m, err := catalog.ReadManifest(ctx, src, o.From)
	if err != nil {
		return "", fmt.Errorf("restore: %w", o.explain(err))
	}
	streams, err := catalog.Streams(o.From, m)
	switch {
	case err != nil:
		return "", fmt.Errorf("restore %s: %w", src.Location(o.From), err)
	case len(streams) > 1:
		return fmt.Sprintf("restore started: the archive is a set of %d streams (%d bytes), restored in %d sessions straight from the destination: the schema's pre-data, the data, then indexes and constraints; nothing is staged on disk. A failure empties the database again",
			len(streams), m.StoredBytes(), o.Jobs), nil
	case o.Scratch != "":
		return fmt.Sprintf("restore started: the archive is one stream: staging it (%d bytes) in %s for pg_restore -j %d; the file is removed afterwards, also on failure. A failure empties the database again",
			m.Bytes, o.Scratch, o.Jobs), nil
	}
	d.Log.Warn().Int("jobs", o.Jobs).Msg("the archive is one stream, which restores in one session whatever --jobs says: back up with PG_DUMP_JOBS=N for sets that restore in N sessions, or give --scratch DIR to stage this one on local disk for pg_restore -j")
	return "restore started: streaming the archive into pg_restore in one session", nil
}

// failure says, of a restore through pg_restore that failed, what the database holds now: the
// archive's data (committed, then a count differed), part of it (pg_restore finished early), or
// what it had (rolled back, or never started). again is how to try once more.
func (o Options) failure(res verify.Result, again string) error {
	err := o.explain(res.Err)
	switch {
	case res.Committed:
		return fmt.Errorf("%w; the restore was committed: the database holds the archive's data as restored, check it or %s", err, again)
	case errors.Is(err, pgrestore.ErrEmptied), errors.Is(err, pgrestore.ErrNotEmptied):
		return err // it says what the database holds
	case errors.Is(err, pgrestore.ErrCommittedEarly):
		return fmt.Errorf("%w; %s from a sound archive", err, again)
	case !errors.Is(err, pgrestore.ErrRolledBack):
		return fmt.Errorf("%w; nothing was restored: the database is as it was", err)
	}
	return err
}

// oneStream refuses a set (a parallel dump) for Heroku's restore, which downloads one URL, the
// set's first stream alone. A dump whose manifest cannot be read is no set (its parts would be
// named there): Heroku restores it as it always has.
func (o Options) oneStream(ctx context.Context, d Deps, app, database string) error {
	if d.Open == nil {
		return nil
	}
	src, err := d.Open(ctx)
	if err != nil {
		return err
	}
	m, err := catalog.ReadManifest(ctx, src, o.From)
	if err == nil && m.Set != nil {
		return fmt.Errorf("restore: %s is a set of %d streams (a parallel dump), and Heroku restores one URL: nothing was changed; restore it through pg_restore with --to set to the database's URL (heroku config:get %s -a %s) and --jobs N, into an empty database",
			o.From, len(m.Set.Parts)+1, database, app)
	}
	return nil
}

// EncryptedToHeroku restores an encrypted archive into app's database. Heroku restores from a
// URL it downloads, and it would download ciphertext it cannot read, so the archive is decrypted
// here instead and streamed into pg_restore against the database's own URL (its attachment's
// config var, read through the Platform API and never logged), in clean mode: the archive's
// objects are dropped and recreated, in one transaction that commits only once both hashes and
// the structure match the manifest. Without an identity nothing is asked of Heroku: the
// manifest alone says which identities would do.
func EncryptedToHeroku(ctx context.Context, d Deps, app, database string, o Options) error {
	src, err := d.Open(ctx)
	if err != nil {
		return err
	}
	if o.Identities == nil {
		return o.failure(d.Database.Restore(ctx, src, o.From, verify.Options{}), "restore again")
	}
	db, err := dumpsource.Heroku{API: d.Heroku}.Locate(ctx, archive.Target{App: app, Database: database})
	if err != nil {
		return err
	}
	target, secrets, err := herokuRestoreURL(db)
	d.Redactor.Add(secrets...)
	if err != nil {
		return fmt.Errorf("restore: %s:%s: %w", app, database, err)
	}
	addon := ""
	if db.Heroku != nil {
		addon = db.Heroku.Addon
	}
	d.Log.Info().Str("addon", addon).Str("location", src.Location(o.From)).
		Msg("restore started: the archive is encrypted, so Heroku cannot restore it from a URL; decrypting it here and streaming it into pg_restore against the database (--clean: the archive's objects are replaced)")
	res := d.Database.Restore(ctx, src, o.From, verify.Options{RestoreTo: target, Clean: true, Name: "restore", Identities: o.Identities})
	if res.Err != nil {
		return o.failure(res, "restore again")
	}
	d.Log.Info().Str("addon", addon).Int("tables", res.Tables).Int64("rows", res.Rows).Int64("bytes", res.Manifest.Bytes).
		Msg("restore finished through pg_restore (the archive is encrypted): both SHA-256s and the structure match the manifest, and every table's row count in the database matches it")
	return nil
}

// herokuRestoreURL is the URL pg_restore reaches a Heroku database with: its config var's,
// with TLS required as for pg_dump (dumpsource's rule), and the values to scrub from logs.
func herokuRestoreURL(db dumpsource.Database) (string, []string, error) {
	secrets := []string{db.URL}
	conn, err := dumpsource.Connection(db)
	if err != nil {
		return "", secrets, err
	}
	u, err := url.Parse(conn.DSN())
	orig, oerr := url.Parse(db.URL)
	if err != nil || oerr != nil {
		return "", secrets, errors.New("the database URL is not a postgres:// URL")
	}
	if pw, ok := orig.User.Password(); ok {
		secrets = append(secrets, pw)
		u.User = url.UserPassword(orig.User.Username(), pw)
	}
	secrets = append(secrets, u.String())
	return u.String(), secrets, nil
}
