package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	destkind "github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/restore"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/verify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// runRestore is `pgoffsite restore`: the way back. Into Heroku (--to app:DATABASE) it presigns a
// short-lived download of an archive and asks Heroku to restore it into a database, replacing
// what is there; into any Postgres (--to postgres://...) it streams the archive into pg_restore.
func runRestore(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the archive's .dump key under ARCHIVE_URL (required)")
	to := fs.String("to", "", "app:DATABASE (Heroku, e.g. shop-prod:DATABASE_URL) or postgres://... to restore into (required)")
	confirm := fs.String("confirm", "", "the app's name again (Heroku), or the database's name with --clean: its current data is replaced")
	clean := fs.Bool("clean", false, "postgres:// only: drop the archive's objects from a database that is not empty, then restore")
	identity := fs.String("identity", "", "age identity file that decrypts an encrypted archive (.dump.age); default: the text of AGE_IDENTITY")
	dest := fs.String("destination", "", "read the archive from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgoffsite restore: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	if restore.IsPostgresURL(*to) {
		return runRestoreToPostgres(ctx, *from, *to, *confirm, *clean, *identity, *dest, stderr)
	}
	if *clean {
		fmt.Fprintln(stderr, "pgoffsite restore: --clean is for --to postgres://...; a Heroku restore always replaces the database's data")
		return ExitUsage
	}
	app, database, _ := strings.Cut(*to, ":")
	if database == "" {
		database = "DATABASE_URL"
	}
	switch {
	case *from == "" || app == "":
		fmt.Fprintln(stderr, "pgoffsite restore: --from KEY and --to app:DATABASE (or --to postgres://...) are required")
		return ExitUsage
	case *confirm != app:
		fmt.Fprintf(stderr, "pgoffsite restore: this replaces all data of %s:%s; to proceed, add --confirm %s\n", app, database, app)
		return ExitUsage
	}
	if archive.IsEncrypted(*from) {
		return runRestoreEncryptedToHeroku(ctx, *from, app, database, *identity, *dest, stderr)
	}
	cfg, err := loadForReading(*dest, "restore")
	if err == nil && cfg.Archive.Scheme != "s3" {
		err = fmt.Errorf("  ARCHIVE_URL: is not s3:// — Heroku restores from a URL it can download, which a local directory is not")
	}
	if err != nil {
		return badConfig(stderr, err)
	}
	red := newRedactor(cfg)
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red).With().Str("app", app).Str("database", database).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Str("archive", *from).Msg("restore FAILED")
		return ExitFailed
	}

	client, err := destkind.S3Client(ctx, cfg, cfg.Archive)
	if err != nil {
		return fail(err)
	}
	deps := restore.Deps{Heroku: heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL, UserAgent: version.UserAgent()}),
		Signer: restore.S3Signer{Client: client, Bucket: cfg.Archive.Bucket, Prefix: cfg.Archive.Prefix}, Log: log, Redactor: red}
	if err := restore.ToHeroku(ctx, deps, app, database, restore.Options{From: *from, CaptureTimeout: cfg.CaptureTimeout}); err != nil {
		return fail(err)
	}
	return ExitOK
}

// runRestoreToPostgres is `pgoffsite restore --to postgres://...`: the archive streams from the
// store into pg_restore (no temporary file) while its size, SHA-256 and structure are checked;
// the restore commits only if they match, and then the database's row counts are compared with
// the archive's, which match the manifest's. A database that is not empty is refused unless
// --clean (with --confirm DATABASE) says to drop and replace the archive's objects there.
func runRestoreToPostgres(ctx context.Context, from, to, confirm string, clean bool, identity, dest string, stderr io.Writer) int {
	red := scrub.New(to)
	u, err := url.Parse(to)
	var dbname string
	if err == nil {
		if pw, ok := u.User.Password(); ok {
			red.Add(pw)
		}
		dbname = strings.TrimPrefix(u.Path, "/")
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "pgoffsite restore: "+red.Scrub(msg))
		return ExitUsage
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
	cfg, err := loadForReading(dest, "restore", config.Except("HEROKU_API_KEY"))
	ids, idSecrets, idErr := loadIdentities(identity, cfg.AgeIdentity)
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return badConfig(stderr, err)
	}
	extra := append([]string{to}, idSecrets...)
	if pw, ok := u.User.Password(); ok {
		extra = append(extra, pw)
	}
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, newRedactor(cfg, extra...)).With().
		Str("host", u.Hostname()).Str("database", dbname).Str("archive", from).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Msg("restore FAILED")
		return ExitFailed
	}
	deps := restore.Deps{Open: func(ctx context.Context) (verify.Source, error) { return openRestoreSource(ctx, cfg) },
		Database: restore.Postgres{}, Log: log}
	if err := restore.ToPostgres(ctx, deps, to, clean, restore.Options{From: from, Identities: ids, Explain: explainer(cfg)}); err != nil {
		return fail(err)
	}
	return ExitOK
}

// openRestoreSource opens the store a restore reads the archive from.
func openRestoreSource(ctx context.Context, cfg config.Config) (verify.Source, error) {
	src, err := openSource(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("restore: open the archive %s: %w", cfg.Archive.String(), err)
	}
	return src, nil
}

// explainer adds the way out to an archive of cfg's destination that lifecycle rules moved to Glacier.
func explainer(cfg config.Config) func(error, string) error {
	return func(err error, key string) error { return explainArchived(err, cfg, key) }
}

// runRestoreEncryptedToHeroku is `pgoffsite restore --to app:DATABASE` of an encrypted archive.
// Heroku restores from a URL it downloads, and it would download ciphertext it cannot read, so
// the archive is decrypted here instead and streamed into pg_restore against the database's own
// URL (its attachment's config var, read through the Platform API and never logged), in clean
// mode: the archive's objects are dropped and recreated, in one transaction that commits only
// once both hashes and the structure match the manifest.
func runRestoreEncryptedToHeroku(ctx context.Context, from, app, database, identity, dest string, stderr io.Writer) int {
	cfg, err := loadForReading(dest, "restore")
	ids, idSecrets, idErr := loadIdentities(identity, cfg.AgeIdentity)
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return badConfig(stderr, err)
	}
	red := newRedactor(cfg, idSecrets...)
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red).With().Str("app", app).Str("database", database).Str("archive", from).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Msg("restore FAILED")
		return ExitFailed
	}
	deps := restore.Deps{Heroku: heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL, UserAgent: version.UserAgent()}),
		Open:     func(ctx context.Context) (verify.Source, error) { return openRestoreSource(ctx, cfg) },
		Database: restore.Postgres{}, Log: log, Redactor: red}
	if err := restore.EncryptedToHeroku(ctx, deps, app, database, restore.Options{From: from, Identities: ids, Explain: explainer(cfg)}); err != nil {
		return fail(err)
	}
	return ExitOK
}
