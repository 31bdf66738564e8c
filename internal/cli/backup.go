package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

func versionString() string { return "pgoffsite " + version.Version }

// runBackup is `pgoffsite backup`.
func runBackup(ctx context.Context, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		// No logger yet on purpose: nothing has been configured, nothing has been contacted.
		fmt.Fprintf(stderr, "pgoffsite: the configuration has problems; nothing was done:\n%s\n", err)
		return ExitUsage
	}
	red := &logging.Redactor{}
	red.Add(cfg.HerokuAPIKey, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red)

	store, err := openStore(ctx, cfg)
	if err != nil {
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot open the archive destination")
		return ExitFailed
	}
	job := &archive.Job{
		Heroku: heroku.New(heroku.Options{
			APIKey:      cfg.HerokuAPIKey,
			PlatformURL: cfg.HerokuAPIURL,
			DataURL:     cfg.HerokuDataAPIURL,
			UserAgent:   version.UserAgent(),
		}),
		Download:       &fetch.Ranged{HTTP: downloadClient()},
		Store:          store,
		Mode:           cfg.Mode,
		MaxAge:         cfg.MaxAge,
		CaptureTimeout: cfg.CaptureTimeout,
		Version:        version.Version,
		Log:            log,
	}
	targets := make([]archive.Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		targets[i] = archive.Target{App: t.App, Database: t.Database}
	}
	log.Info().Str("version", version.Version).Int("targets", len(targets)).Str("mode", cfg.Mode).
		Str("archive", cfg.Archive.String()).Msg("backup run started")
	results := job.Run(ctx, targets)
	if c, ok := store.(interface{ ConditionalWritesUnsupported() bool }); ok && c.ConditionalWritesUnsupported() {
		log.Warn().Msg("the archive store rejects conditional writes (If-None-Match): an existing archive could be overwritten by a re-run; S3 itself supports them")
	}
	return summarize(log, results, ctx.Err() != nil)
}

func openStore(ctx context.Context, cfg config.Config) (archive.Store, error) {
	switch cfg.Archive.Scheme {
	case "file":
		return filestore.New(cfg.Archive.Dir)
	case "s3":
		client, err := s3store.NewClient(ctx, s3store.ClientOptions{Region: cfg.Region, ForcePathStyle: cfg.S3ForcePathStyle})
		if err != nil {
			return nil, err
		}
		return s3store.New(client, s3store.Options{
			Bucket:       cfg.Archive.Bucket,
			Prefix:       cfg.Archive.Prefix,
			StorageClass: cfg.S3StorageClass,
			SSE:          cfg.S3SSE,
			SSEKMSKeyID:  cfg.S3SSEKMSKeyID,
		}), nil
	}
	return nil, fmt.Errorf("unsupported archive scheme %q", cfg.Archive.Scheme)
}

// downloadClient reads signed URLs: no overall timeout (a big dump takes hours), but a stalled
// connection or a server that never answers is an error.
func downloadClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t}
}

// summarize logs one line per target and a total line, and returns the run's exit status.
func summarize(log zerolog.Logger, results []archive.Result, interrupted bool) int {
	failed := 0
	var total int64
	for _, r := range results {
		if r.Err != nil {
			failed++
			log.Error().Str("app", r.Target.App).Str("database", r.Target.Database).Str("backup", r.Backup).
				Dur("duration", r.Duration.Round(time.Millisecond)).Err(r.Err).Msg("summary: FAILED")
			continue
		}
		total += r.Bytes
		status := "archived"
		if r.AlreadyArchived {
			status = "already archived"
		}
		log.Info().Str("app", r.Target.App).Str("database", r.Target.Database).Str("backup", r.Backup).
			Int64("bytes", r.Bytes).Dur("duration", r.Duration.Round(time.Millisecond)).Str("location", r.Location).
			Msg("summary: " + status)
	}
	ev := log.Info()
	if failed > 0 || interrupted {
		ev = log.Error()
	}
	ev = ev.Int("targets", len(results)).Int("archived", len(results)-failed).Int("failed", failed).Int64("bytes", total)
	switch {
	case interrupted:
		ev.Msg("backup run interrupted")
		return ExitFailed
	case failed > 0:
		ev.Msg("backup run finished with failures")
		return ExitFailed
	}
	ev.Msg("backup run finished")
	return ExitOK
}
