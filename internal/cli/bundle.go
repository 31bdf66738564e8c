package cli

import (
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// newBundler wires the app bundles' writer (internal/bundle) for a run of `pgoffsite bundle`,
// or of backup with BACKUP_APP_BUNDLE.
func newBundler(cfg config.Config, hk *heroku.Client, job *archive.Job, red *logging.Redactor, log zerolog.Logger) *bundle.Writer {
	return &bundle.Writer{Heroku: hk, Store: job, Encrypt: job.Encrypt, Sign: cfg.BundleSigningKey, Redact: red,
		Log: log, Version: version.Version,
		Download: &fetch.Ranged{HTTP: fetch.DownloadClient(), Options: fetch.Options{Concurrency: cfg.Concurrency}}}
}
