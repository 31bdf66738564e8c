package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// restoreOptions are the options of `pgoffsite restore`.
type restoreOptions struct {
	From, To, Confirm     string
	Clean                 bool
	Identity, Destination string
}

func newRestoreCmd(f *Factory) *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore --from KEY --to app:DATABASE|postgres://... --confirm NAME [--clean] [--identity FILE]",
		Short: "restore an archive into a Heroku database or any Postgres",
		Long: "Restore an archive. Into Heroku (--to app:DATABASE, --confirm APP) Heroku downloads it and replaces the\n" +
			"database's data; an encrypted one (.dump.age) is decrypted here into pg_restore instead. Into any Postgres\n" +
			"(--to postgres://...) it streams into pg_restore, is checked, and row counts are compared; a database that is\n" +
			"not empty is refused unless --clean --confirm DATABASE.",
		Example: "  pgoffsite restore --from shop/DATABASE_URL/2026/01/02/b042.dump --to shop-staging:DATABASE_URL --confirm shop-staging\n" +
			"  pgoffsite restore --from shop/DATABASE_URL/2026/01/02/b042.dump --to postgres://localhost:5432/scratch",
		Args: noArguments,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "the archive's .dump key under ARCHIVE_URL (required)")
	fs.StringVar(&o.To, "to", "", "app:DATABASE (Heroku, e.g. shop-prod:DATABASE_URL) or postgres://... to restore into (required)")
	fs.StringVar(&o.Confirm, "confirm", "", "the app's name again (Heroku), or the database's name with --clean: its current data is replaced")
	fs.BoolVar(&o.Clean, "clean", false, "postgres:// only: drop the archive's objects from a database that is not empty, then restore")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts an encrypted archive (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "read the archive from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	return cmd
}

// runRestore is `pgoffsite restore`: the way back. Into Heroku (--to app:DATABASE) it presigns a
// short-lived download of an archive and asks Heroku to restore it into a database, replacing
// what is there; into any Postgres (--to postgres://...) it streams the archive into pg_restore.
func runRestore(ctx context.Context, f *Factory, o *restoreOptions) error {
	if isPostgresURL(o.To) {
		return runRestoreToPostgres(ctx, f, o)
	}
	if o.Clean {
		return badUsage("pgoffsite restore: --clean is for --to postgres://...; a Heroku restore always replaces the database's data")
	}
	from := o.From
	app, database, _ := strings.Cut(o.To, ":")
	if database == "" {
		database = "DATABASE_URL"
	}
	switch {
	case from == "" || app == "":
		return badUsage("pgoffsite restore: --from KEY and --to app:DATABASE (or --to postgres://...) are required")
	case o.Confirm != app:
		return badUsage("pgoffsite restore: this replaces all data of %s:%s; to proceed, add --confirm %s", app, database, app)
	}
	if archive.IsEncrypted(from) {
		return runRestoreEncryptedToHeroku(ctx, f, o, app, database)
	}
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "BACKUP_TARGETS") }
	cfg, err := f.Config()
	if err == nil && cfg.Archive.Scheme != "s3" {
		err = fmt.Errorf("  ARCHIVE_URL: is not s3:// — Heroku restores from a URL it can download, which a local directory is not")
	}
	if err != nil {
		return badConfig(err)
	}
	red := f.Redactor()
	log := f.Logger().With().Str("app", app).Str("database", database).Logger()
	fail := func(err error) error {
		log.Error().Err(err).Str("archive", from).Msg("restore FAILED")
		return exitWith(ExitFailed)
	}

	client, err := s3ClientFor(ctx, cfg, cfg.Archive)
	if err != nil {
		return fail(err)
	}
	key := from
	if cfg.Archive.Prefix != "" {
		key = cfg.Archive.Prefix + "/" + key
	}
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &cfg.Archive.Bucket, Key: &key}); err != nil {
		return fail(fmt.Errorf("s3: the archive s3://%s/%s cannot be read with these credentials (use the reader's, see `pgoffsite policy --reader`): %w", cfg.Archive.Bucket, key, err))
	}
	signed, err := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &cfg.Archive.Bucket, Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		return fail(fmt.Errorf("s3: presign s3://%s/%s: %w", cfg.Archive.Bucket, key, err))
	}
	red.Add(signed.URL)

	hk := f.Heroku()
	db, err := hk.Resolve(ctx, app, database)
	if err != nil {
		return fail(err)
	}
	t, err := hk.Restore(ctx, db, signed.URL)
	if err != nil {
		return fail(err)
	}
	log.Info().Str("restore", t.Name()).Str("addon", db.AddonName).Str("archive", from).Msg("restore started on Heroku")
	t, err = hk.Wait(ctx, db, t, cfg.CaptureTimeout, nil)
	if err != nil {
		return fail(err)
	}
	log.Info().Str("restore", t.Name()).Int64("bytes", t.ProcessedBytes).Str("archive", from).Msg("restore finished: the database now holds the archive's data")
	return nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// runRestoreToPostgres is `pgoffsite restore --to postgres://...`: the archive streams from the
// store into pg_restore (no temporary file) while its size, SHA-256 and structure are checked;
// the restore commits only if they match, and then the database's row counts are compared with
// the archive's, which match the manifest's. A database that is not empty is refused unless
// --clean (with --confirm DATABASE) says to drop and replace the archive's objects there.
func runRestoreToPostgres(ctx context.Context, f *Factory, o *restoreOptions) error {
	from, to, confirm, clean := o.From, o.To, o.Confirm, o.Clean
	red := scrub.New(to)
	u, err := url.Parse(to)
	var dbname string
	if err == nil {
		if pw, ok := u.User.Password(); ok {
			red.Add(pw)
		}
		dbname = strings.TrimPrefix(u.Path, "/")
	}
	usage := func(msg string) error {
		return badUsage("%s", "pgoffsite restore: "+red.Scrub(msg))
	}
	switch {
	case err != nil:
		return usage(fmt.Sprintf("--to is not a valid database URL (%v): write it as postgres://HOST:5432/DATABASE, with USER:PASSWORD@ before HOST and any special character of the password %%-escaped", err))
	case dbname == "" || strings.Contains(dbname, "/"):
		return usage("--to names no database: write it as postgres://HOST:5432/DATABASE, with USER:PASSWORD@ before HOST")
	case from == "":
		return usage("--from KEY is required: the archive's .dump key under ARCHIVE_URL")
	case !strings.HasSuffix(from, ".dump") && !archive.IsEncrypted(from):
		return usage(fmt.Sprintf("--from %s is not an archive's key: it ends in .dump, or .dump.age when encrypted (the manifest beside it ends in .json)", from))
	case clean && confirm != dbname:
		return usage(fmt.Sprintf("--clean drops the archive's objects from database %s and restores them, replacing their data; to proceed, add --confirm %s", dbname, dbname))
	}
	ids, idSecrets, idErr := loadIdentities(o.Identity)
	f.load = func() (config.Config, error) {
		return loadForReading(o.Destination, "BACKUP_TARGETS", "HEROKU_API_KEY")
	}
	cfg, err := f.Config()
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return badConfig(err)
	}
	f.AddSecrets(append([]string{to}, idSecrets...)...)
	if pw, ok := u.User.Password(); ok {
		f.AddSecrets(pw)
	}
	log := f.Logger().With().
		Str("host", u.Hostname()).Str("database", dbname).Str("archive", from).Logger()
	fail := func(err error) error {
		log.Error().Err(err).Msg("restore FAILED")
		return exitWith(ExitFailed)
	}
	target := pgrestore.Options{URL: to, Name: "restore"}
	if !clean {
		objs, err := pgrestore.Objects(ctx, target)
		if err != nil {
			return fail(fmt.Errorf("restore: database %s on %s: %w; nothing was read or changed", dbname, u.Hostname(), err))
		}
		if len(objs) > 0 {
			if len(objs) > 10 {
				objs = append(objs[:10], "...")
			}
			return fail(fmt.Errorf("restore: database %s is not empty (it holds %s): nothing was read or changed; restore into an empty database (createdb NEW), or add --clean --confirm %s to drop the archive's objects there and restore them",
				dbname, strings.Join(objs, ", "), dbname))
		}
	}
	src, err := f.Source(ctx)
	if err != nil {
		return fail(fmt.Errorf("restore: open the archive %s: %w", cfg.Archive.String(), err))
	}
	how := "restore started: streaming the archive into pg_restore"
	if archive.IsEncrypted(from) {
		how = "restore started: decrypting the archive while it streams into pg_restore"
	}
	log.Info().Bool("clean", clean).Str("location", src.Location(from)).Msg(how)
	res := verify.Archive(ctx, src, from, verify.Options{RestoreTo: to, Clean: clean, Name: "restore", Identities: ids})
	if res.Err != nil {
		return fail(restoreErr(res, cfg, from, "restore again with --clean"))
	}
	log.Info().Int("tables", res.Tables).Int64("rows", res.Rows).Int64("bytes", res.Manifest.Bytes).
		Msg("restore finished: size, SHA-256 and structure match the manifest, and every table's row count in the database matches it")
	return nil
}

// restoreErr says, of a restore through pg_restore that failed, what the database holds now:
// the archive's data (committed, then a count differed), part of it (pg_restore finished early),
// or what it had (rolled back, or never started). again is how to try once more.
func restoreErr(res verify.Result, cfg config.Config, from, again string) error {
	err := explainArchived(res.Err, cfg, from)
	switch {
	case res.Committed:
		return fmt.Errorf("%w; the restore was committed: the database holds the archive's data as restored, check it or %s", err, again)
	case errors.Is(err, pgrestore.ErrCommittedEarly):
		return fmt.Errorf("%w; %s from a sound archive", err, again)
	case !errors.Is(err, pgrestore.ErrRolledBack):
		return fmt.Errorf("%w; nothing was restored: the database is as it was", err)
	}
	return err
}

// runRestoreEncryptedToHeroku is `pgoffsite restore --to app:DATABASE` of an encrypted archive.
// Heroku restores from a URL it downloads, and it would download ciphertext it cannot read, so
// the archive is decrypted here instead and streamed into pg_restore against the database's own
// URL (its attachment's config var, read through the Platform API and never logged), in clean
// mode: the archive's objects are dropped and recreated, in one transaction that commits only
// once both hashes and the structure match the manifest.
func runRestoreEncryptedToHeroku(ctx context.Context, f *Factory, o *restoreOptions, app, database string) error {
	from := o.From
	ids, idSecrets, idErr := loadIdentities(o.Identity)
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "BACKUP_TARGETS") }
	cfg, err := f.Config()
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return badConfig(err)
	}
	f.AddSecrets(idSecrets...)
	red := f.Redactor()
	log := f.Logger().With().Str("app", app).Str("database", database).Str("archive", from).Logger()
	fail := func(err error) error {
		log.Error().Err(err).Msg("restore FAILED")
		return exitWith(ExitFailed)
	}
	src, err := f.Source(ctx)
	if err != nil {
		return fail(fmt.Errorf("restore: open the archive %s: %w", cfg.Archive.String(), err))
	}
	if ids == nil {
		// Reads the manifest only, to say which identities would do; nothing asked of Heroku.
		return fail(restoreErr(verify.Archive(ctx, src, from, verify.Options{}), cfg, from, "restore again"))
	}
	db, err := dumpsource.Heroku{API: f.Heroku()}.Locate(ctx, archive.Target{App: app, Database: database})
	if err != nil {
		return fail(err)
	}
	target, secrets, err := herokuRestoreURL(db)
	red.Add(secrets...)
	if err != nil {
		return fail(fmt.Errorf("restore: %s:%s: %w", app, database, err))
	}
	addon := ""
	if db.Heroku != nil {
		addon = db.Heroku.Addon
	}
	log.Info().Str("addon", addon).Str("location", src.Location(from)).
		Msg("restore started: the archive is encrypted, so Heroku cannot restore it from a URL; decrypting it here and streaming it into pg_restore against the database (--clean: the archive's objects are replaced)")
	res := verify.Archive(ctx, src, from, verify.Options{RestoreTo: target, Clean: true, Name: "restore", Identities: ids})
	if res.Err != nil {
		return fail(restoreErr(res, cfg, from, "restore again"))
	}
	log.Info().Str("addon", addon).Int("tables", res.Tables).Int64("rows", res.Rows).Int64("bytes", res.Manifest.Bytes).
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
