package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// runRestore is `pgoffsite restore`: the way back. It presigns a short-lived download of an
// archive and asks Heroku to restore it into a database, replacing what is there.
func runRestore(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the archive's .dump key under ARCHIVE_URL (required)")
	to := fs.String("to", "", "app:DATABASE to restore into, e.g. shop-prod:DATABASE_URL (required)")
	confirm := fs.String("confirm", "", "the app's name again: the database's current data is replaced")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	app, database, _ := strings.Cut(*to, ":")
	if database == "" {
		database = "DATABASE_URL"
	}
	switch {
	case *from == "" || app == "":
		fmt.Fprintln(stderr, "pgoffsite restore: --from KEY and --to app:DATABASE are required")
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

	client, err := s3store.NewClient(ctx, s3store.ClientOptions{Region: cfg.Region, ForcePathStyle: cfg.S3ForcePathStyle})
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
