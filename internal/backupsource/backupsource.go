// Package backupsource picks where each target's backup comes from: env:VAR targets are
// pg_dumped from their URL, Heroku targets come from Heroku PG Backups or, with
// BACKUP_METHOD=pg_dump, are pg_dumped from their attachment's URL, or, with BACKUP_METHOD=fork,
// from a fork of their database made for the dump.
package backupsource

import (
	"context"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/forksource"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
)

// Heroku is what the sources ask the Platform API: backups, and attachments' URLs.
type Heroku interface {
	pgbackups.Heroku
	dumpsource.HerokuAPI
}

// Options are the settings of the sources.
type Options struct {
	Heroku Heroku
	// PgDump dumps Heroku targets with pg_dump instead of taking Heroku's backups.
	PgDump bool
	// Fork, when set, dumps Heroku targets from forks of their databases instead, with the
	// pg_dump settings below (its Dump is set here).
	Fork *forksource.Source
	// EnvURLs are the database URLs of the env:VAR targets, by VAR.
	EnvURLs    map[string]string
	PgDumpPath string
	Silence    time.Duration // how long pg_dump may write nothing; 0 is dumpsource's default
	// Secrets are scrubbed from pg_dump's and psql's words.
	Secrets []string
	// PgDumpJobs (PG_DUMP_JOBS) and the exclusions (PG_DUMP_EXCLUDE_TABLE_DATA,
	// PG_DUMP_EXCLUDE_SCHEMA): how every pg_dump target is dumped.
	PgDumpJobs             int
	PgDumpExcludeTableData []string
	PgDumpExcludeSchema    []string
	PgDumpCompress         string // PG_DUMP_COMPRESS
	// Heroku PG Backups: which backup (BACKUP_MODE), how old it may be, how long a capture may
	// take, how many download ranges are in flight.
	Mode           string
	MaxAge         time.Duration
	CaptureTimeout time.Duration
	Concurrency    int
}

// New is the source of a backup run.
func New(o Options) archive.Source {
	dump := dumpsource.Source{PgDump: o.PgDumpPath, Silence: o.Silence, Secrets: o.Secrets,
		Jobs: o.PgDumpJobs, ExcludeTableData: o.PgDumpExcludeTableData, ExcludeSchema: o.PgDumpExcludeSchema, Compress: o.PgDumpCompress}
	env, onHeroku := dump, dump
	env.Locate, onHeroku.Locate = dumpsource.Env{URLs: o.EnvURLs}, dumpsource.Heroku{API: o.Heroku}
	switch {
	case o.Fork != nil:
		o.Fork.Dump = dump
		return sources{env: &env, heroku: o.Fork}
	case o.PgDump:
		return sources{env: &env, heroku: &onHeroku}
	}
	return sources{env: &env, heroku: &pgbackups.Source{
		Heroku:         o.Heroku,
		Download:       &fetch.Ranged{HTTP: fetch.DownloadClient(), Options: fetch.Options{Concurrency: o.Concurrency}},
		Mode:           o.Mode,
		MaxAge:         o.MaxAge,
		CaptureTimeout: o.CaptureTimeout,
	}}
}

// sources sends env:VAR targets to pg_dump, and Heroku targets to the BACKUP_METHOD's source.
type sources struct{ heroku, env archive.Source }

func (s sources) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	if t.Env {
		return s.env.Open(ctx, t)
	}
	return s.heroku.Open(ctx, t)
}
