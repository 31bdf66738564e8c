package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
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
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgoffsite restore: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	if isPostgresURL(*to) {
		return runRestoreToPostgres(ctx, *from, *to, *confirm, *clean, stderr)
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
	cfg, err := config.LoadExcept("BACKUP_TARGETS")
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

	client, err := s3ClientFor(ctx, cfg, cfg.Archive)
	if err != nil {
		return fail(err)
	}
	key := *from
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

	hk := heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL, UserAgent: version.UserAgent()})
	db, err := hk.Resolve(ctx, app, database)
	if err != nil {
		return fail(err)
	}
	t, err := hk.Restore(ctx, db, signed.URL)
	if err != nil {
		return fail(err)
	}
	log.Info().Str("restore", t.Name()).Str("addon", db.AddonName).Str("archive", *from).Msg("restore started on Heroku")
	t, err = hk.Wait(ctx, db, t, cfg.CaptureTimeout, nil)
	if err != nil {
		return fail(err)
	}
	log.Info().Str("restore", t.Name()).Int64("bytes", t.ProcessedBytes).Str("archive", *from).Msg("restore finished: the database now holds the archive's data")
	return ExitOK
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// runRestoreToPostgres is `pgoffsite restore --to postgres://...`: the archive streams from the
// store into pg_restore (no temporary file) while its size, SHA-256 and structure are checked;
// the restore commits only if they match, and then the database's row counts are compared with
// the archive's, which match the manifest's. A database that is not empty is refused unless
// --clean (with --confirm DATABASE) says to drop and replace the archive's objects there.
func runRestoreToPostgres(ctx context.Context, from, to, confirm string, clean bool, stderr io.Writer) int {
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
	case !strings.HasSuffix(from, ".dump"):
		return usage(fmt.Sprintf("--from %s is not an archive's key: it ends in .dump (the manifest beside it ends in .json)", from))
	case clean && confirm != dbname:
		return usage(fmt.Sprintf("--clean drops the archive's objects from database %s and restores them, replacing their data; to proceed, add --confirm %s", dbname, dbname))
	}
	cfg, err := config.LoadExcept("BACKUP_TARGETS", "HEROKU_API_KEY")
	if err != nil {
		return badConfig(stderr, err)
	}
	extra := []string{to}
	if pw, ok := u.User.Password(); ok {
		extra = append(extra, pw)
	}
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, newRedactor(cfg, extra...)).With().
		Str("host", u.Hostname()).Str("database", dbname).Str("archive", from).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Msg("restore FAILED")
		return ExitFailed
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
	src, err := openSource(ctx, cfg)
	if err != nil {
		return fail(fmt.Errorf("restore: open the archive %s: %w", cfg.Archive.String(), err))
	}
	log.Info().Bool("clean", clean).Str("location", src.Location(from)).Msg("restore started: streaming the archive into pg_restore")
	res := verify.Archive(ctx, src, from, verify.Options{RestoreTo: to, Clean: clean, Name: "restore"})
	if res.Err != nil {
		err := explainArchived(res.Err, cfg, from)
		switch {
		case res.Committed:
			err = fmt.Errorf("%w; the restore was committed: the database holds the archive's data as restored, check it or restore again with --clean", err)
		case errors.Is(err, pgrestore.ErrCommittedEarly):
			err = fmt.Errorf("%w; restore again with --clean from a sound archive", err)
		case !errors.Is(err, pgrestore.ErrRolledBack):
			err = fmt.Errorf("%w; nothing was restored: the database is as it was", err)
		}
		return fail(err)
	}
	log.Info().Int("tables", res.Tables).Int64("rows", res.Rows).Int64("bytes", res.Manifest.Bytes).
		Msg("restore finished: size, SHA-256 and structure match the manifest, and every table's row count in the database matches it")
	return ExitOK
}
