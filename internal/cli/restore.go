package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/config"
	destkind "github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/listing"
	"github.com/pgoffsite/pgoffsite/internal/restore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// restoreOptions are the options of `pgoffsite restore`.
type restoreOptions struct {
	From, To, Confirm     string
	Clean                 bool
	Identity, Destination string
	Jobs                  int
	Scratch               string
}

func newRestoreCmd(f *Factory) *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore --from latest|TARGET@YYYY-MM-DD|KEY --to app:DATABASE|postgres://... --confirm NAME [--clean] [--identity FILE]",
		Short: "restore an archive into a Heroku database or any Postgres",
		Long: "Restore an archive. Into Heroku (--to app:DATABASE, --confirm APP) Heroku downloads it and replaces the\n" +
			"database's data; an encrypted one (.dump.age) is decrypted here into pg_restore instead. Into any Postgres\n" +
			"(--to postgres://...) it streams into pg_restore, is checked, and row counts are compared; a database that is\n" +
			"not empty is refused unless --clean --confirm DATABASE.",
		Example: "  pgoffsite restore --from shop:DATABASE@2026-01-02 --to shop-staging:DATABASE_URL --confirm shop-staging\n" +
			"  pgoffsite restore --from shop/DATABASE_URL/2026/01/02/b042.dump --to postgres://localhost:5432/scratch",
		Args: noArguments,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "the archive: "+listing.Forms+" (required; pgoffsite list shows them)")
	fs.StringVar(&o.To, "to", "", "app:DATABASE (Heroku, e.g. shop-prod:DATABASE_URL) or postgres://... to restore into (required)")
	fs.StringVar(&o.Confirm, "confirm", "", "the app's name again (Heroku), or the database's name with --clean: its current data is replaced")
	fs.BoolVar(&o.Clean, "clean", false, "postgres:// only: drop the archive's objects from a database that is not empty, then restore")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts an encrypted archive (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "read the archive from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	jobsFlags(fs, &o.Jobs, &o.Scratch)
	return cmd
}

// jobsFlags are the flags of a restore in several sessions (restore, verify --restore-to).
func jobsFlags(fs *pflag.FlagSet, jobs *int, scratch *string) {
	fs.IntVar(jobs, "jobs", 1, "postgres:// only: restore in this many sessions at once — a set (PG_DUMP_JOBS) straight from the destination, into an empty database, emptied again on failure; 1: one session, one transaction")
	fs.StringVar(scratch, "scratch", "", "with --jobs above 1: stage an archive of one stream in this local directory for pg_restore -j (it needs the archive's size free; the file is removed afterwards)")
}

// checkJobs checks --jobs and --scratch; the error says which flag fixes it.
func checkJobs(jobs int, scratch string) error {
	switch {
	case jobs < 1:
		return fmt.Errorf("--jobs %d: give 1 or more sessions", jobs)
	case scratch != "" && jobs == 1:
		return errors.New("--scratch stages an archive for pg_restore -j: give --jobs 2 or more with it, or drop --scratch")
	}
	return nil
}

// runRestore is `pgoffsite restore`: the way back. Into Heroku (--to app:DATABASE) it presigns a
// short-lived download of an archive and asks Heroku to restore it into a database, replacing
// what is there; into any Postgres (--to postgres://...) it streams the archive into pg_restore.
func runRestore(ctx context.Context, f *Factory, o *restoreOptions) error {
	if restore.IsPostgresURL(o.To) {
		return runRestoreToPostgres(ctx, f, o)
	}
	app, database, err := restore.ParseHerokuTarget(o.From, o.To, o.Confirm, o.Clean)
	if err == nil && (o.Jobs != 1 || o.Scratch != "") {
		err = errors.New("--jobs and --scratch are for --to postgres://...: Heroku restores an archive itself, in one session")
	}
	if err != nil {
		return badUsage("pgoffsite restore: %v", err)
	}
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "restore") }
	if !listing.IsKey(o.From) {
		// Whether the archive is encrypted is known once it is found; the identity is loaded
		// first, so that its text is a secret before anything is written.
		if _, _, err := loadWithIdentity(f, o.Identity); err != nil {
			return err
		}
		if o.From, err = f.resolveFrom(ctx, o.From, listing.Dump); err != nil {
			return err
		}
	}
	from := o.From
	if catalog.IsEncrypted(from) {
		return runRestoreEncryptedToHeroku(ctx, f, o, app, database)
	}
	cfg, err := f.Config()
	own, isS3 := s3store.SettingsOf(cfg.Archive)
	if err == nil && !isS3 {
		err = fmt.Errorf("  ARCHIVE_URL: is not s3:// — Heroku restores from a URL it can download, which a local directory is not")
	}
	if err != nil {
		return badConfig(err)
	}
	log := f.Logger().With().Str("app", app).Str("database", database).Logger()
	client, err := destkind.S3Client(ctx, cfg.Env(), cfg.Archive)
	if err == nil {
		open := func(ctx context.Context) (verify.Source, error) { return f.Source(ctx) }
		deps := restore.Deps{Heroku: f.Heroku(), Open: open,
			Signer: restore.S3Signer{Client: client, Bucket: own.Bucket, Prefix: own.Prefix}, Log: log, Redactor: f.Redactor()}
		err = restore.ToHeroku(ctx, deps, app, database, restore.Options{From: from, CaptureTimeout: cfg.CaptureTimeout})
	}
	return failedOn(log.With().Str("archive", from).Logger(), err, "restore FAILED")
}

// runRestoreToPostgres is `pgoffsite restore --to postgres://...`: the archive streams from the
// store into pg_restore (no temporary file) while its size, SHA-256 and structure are checked;
// the restore commits only if they match, and then the database's row counts are compared with
// the archive's, which match the manifest's. A database that is not empty is refused unless
// --clean (with --confirm DATABASE) says to drop and replace the archive's objects there.
func runRestoreToPostgres(ctx context.Context, f *Factory, o *restoreOptions) error {
	t, err := restore.ParsePostgresTarget(o.From, o.To, o.Confirm, o.Clean)
	if err == nil {
		err = checkJobs(o.Jobs, o.Scratch)
	}
	if err != nil {
		return badUsage("pgoffsite restore: %v", err)
	}
	f.load = func() (config.Config, error) {
		return loadForReading(o.Destination, "restore", config.Except("HEROKU_API_KEY"))
	}
	cfg, ids, err := loadWithIdentity(f, o.Identity)
	if err != nil {
		return err
	}
	f.AddSecrets(t.Secrets...)
	if o.From, err = f.resolveFrom(ctx, o.From, listing.Dump); err != nil {
		return err
	}
	log := f.Logger().With().
		Str("host", t.Host).Str("database", t.Database).Str("archive", o.From).Logger()
	deps, opts := pgRestoreDeps(f, cfg, log, o.From, ids)
	opts.Jobs, opts.Scratch = o.Jobs, o.Scratch
	return failedOn(log, restore.ToPostgres(ctx, deps, t.URL, o.Clean, opts), "restore FAILED")
}

// pgRestoreDeps are what a restore through pg_restore works with: the store it reads the
// archive from, opened when the restore comes to it, and the way out of Glacier there.
func pgRestoreDeps(f *Factory, cfg config.Config, log zerolog.Logger, from string, ids *agecrypt.Identities) (restore.Deps, restore.Options) {
	open := func(ctx context.Context) (verify.Source, error) {
		src, err := f.Source(ctx)
		if err != nil {
			return nil, fmt.Errorf("restore: open the archive %s: %w", cfg.Archive.String(), err)
		}
		return src, nil
	}
	return restore.Deps{Open: open, Database: restore.Postgres{}, Log: log},
		restore.Options{From: from, Identities: ids, Explain: glacierOf(cfg).Explain}
}

// glacierOf is where cfg's destination keeps archives that lifecycle rules may move to Glacier.
func glacierOf(cfg config.Config) verify.Glacier {
	own, _ := s3store.SettingsOf(cfg.Archive) // none outside S3
	return verify.Glacier{Bucket: own.Bucket, Prefix: own.Prefix}
}

// runRestoreEncryptedToHeroku is `pgoffsite restore --to app:DATABASE` of an encrypted archive.
// Heroku restores from a URL it downloads, and it would download ciphertext it cannot read, so
// the archive is decrypted here instead and streamed into pg_restore against the database's own
// URL (its attachment's config var, read through the Platform API and never logged), in clean
// mode: the archive's objects are dropped and recreated, in one transaction that commits only
// once both hashes and the structure match the manifest.
func runRestoreEncryptedToHeroku(ctx context.Context, f *Factory, o *restoreOptions, app, database string) error {
	from := o.From
	cfg, ids, err := loadWithIdentity(f, o.Identity)
	if err != nil {
		return err
	}
	log := f.Logger().With().Str("app", app).Str("database", database).Str("archive", from).Logger()
	deps, opts := pgRestoreDeps(f, cfg, log, from, ids)
	deps.Heroku, deps.Redactor = f.Heroku(), f.Redactor()
	return failedOn(log, restore.EncryptedToHeroku(ctx, deps, app, database, opts), "restore FAILED")
}
