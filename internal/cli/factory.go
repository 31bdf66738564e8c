package cli

import (
	"context"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/coordinator"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/drill"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/throwaway"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// Factory hands a command its dependencies, each built once, on first use: the configuration
// subset the command reads, the redactor, the logger, the notifier, the one Heroku client, the
// destinations. Its exported fields are the process's outputs, its clock and the knobs that tests
// turn; NewFactory sets them for production.
type Factory struct {
	Stdout, Stderr io.Writer
	Now            func() time.Time

	// HerokuRetryBudget is the time one Heroku call may spend retrying; 0 is the client's default.
	HerokuRetryBudget time.Duration
	// DumpSilence is how long pg_dump may write nothing; 0 is dumpsource's default.
	DumpSilence time.Duration
	// LimitMemory gives the Go runtime the run's memory budget (ARCHIVE_MEMORY_LIMIT). Off in
	// tests that run many backups inside one process whose memory is not the run's.
	LimitMemory bool
	// Coordinator, when set, adjusts the fan-out coordinator's waits.
	Coordinator func(*coordinator.Coordinator)
	// DrillTiming bounds and spaces a drill's waits for Heroku; zero is the drill's defaults.
	DrillTiming drill.Timing
	// ForkTiming bounds and spaces the waits for a fork (BACKUP_METHOD=fork); zero is the defaults.
	ForkTiming throwaway.Timing

	// load reads the command's configuration subset: set by the command before it runs.
	load    func() (config.Config, error)
	cfg     *config.Config
	cfgErr  error
	secrets []string // a command's own, beyond the configuration's (a URL on the command line)
	red     *logging.Redactor
	log     *zerolog.Logger
	hk      *heroku.Client
	closers []io.Closer
}

// NewFactory is the production factory writing to stdout and stderr.
func NewFactory(stdout, stderr io.Writer) *Factory {
	return &Factory{Stdout: stdout, Stderr: stderr, Now: time.Now, LimitMemory: true}
}

// Config is the command's configuration, read once. Its error lists every problem.
func (f *Factory) Config() (config.Config, error) {
	if f.cfg == nil {
		cfg, err := f.load()
		f.cfg, f.cfgErr = &cfg, err
		if err == nil && cfg.AllTargets {
			f.cfgErr = f.listAllTargets()
		}
	}
	return *f.cfg, f.cfgErr
}

// configure makes load the command's configuration and reads it; its problems end the command
// as a configuration error (exit status 2), before anything is contacted.
func (f *Factory) configure(load func() (config.Config, error)) (config.Config, error) {
	f.load = load
	cfg, err := f.Config()
	if err != nil {
		return cfg, badConfig(err)
	}
	return cfg, nil
}

// config is the configuration once Config has succeeded: what the other pieces are built from.
func (f *Factory) config() config.Config {
	if f.cfg == nil {
		return config.Config{}
	}
	return *f.cfg
}

// AddSecrets names values the command knows of that must never be written anywhere (a
// database URL given on the command line, an identity's text). Call it before the redactor
// and the notifier are built.
func (f *Factory) AddSecrets(s ...string) { f.secrets = append(f.secrets, s...) }

// Redactor scrubs the secrets from everything the command writes.
func (f *Factory) Redactor() *logging.Redactor {
	if f.red == nil {
		f.red = newRedactor(f.config(), f.secrets...)
	}
	return f.red
}

// Logger writes the command's log to stderr, as LOG_FORMAT and LOG_LEVEL say, scrubbed.
func (f *Factory) Logger() zerolog.Logger {
	if f.log == nil {
		cfg := f.config()
		log := logging.New(f.Stderr, cfg.LogFormat, cfg.LogLevel, f.Redactor())
		f.log = &log
	}
	return *f.log
}

// Notifier reports a run of command to that command's own heartbeat (config.Heartbeat: backup's
// is HEARTBEAT_URL, verify's VERIFY_HEARTBEAT_URL, …; none when unset) and to
// NOTIFY_WEBHOOK_URL; when it cannot be set up, the error is logged and the command ends with
// exit status 2.
func (f *Factory) Notifier(command string) (*notify.Notifier, error) {
	cfg := f.config()
	name, heartbeat := cfg.Heartbeat(command)
	n, err := notify.New(notify.Options{HeartbeatVar: name, HeartbeatURL: heartbeat, WebhookURL: cfg.WebhookURL, On: cfg.NotifyOn,
		UserAgent: version.UserAgent(), Secrets: secrets(cfg, f.secrets...)})
	if err != nil {
		log := f.Logger()
		log.Error().Err(err).Msg("cannot set up notifications")
		return nil, exitWith(ExitUsage)
	}
	return n, nil
}

// Heroku is the command's one Heroku client.
func (f *Factory) Heroku() *heroku.Client {
	if f.hk == nil {
		cfg := f.config()
		f.hk = heroku.New(heroku.Options{APIKey: cfg.HerokuAPIKey, PlatformURL: cfg.HerokuAPIURL, DataURL: cfg.HerokuDataAPIURL,
			UserAgent: version.UserAgent(), RetryBudget: f.HerokuRetryBudget})
	}
	return f.hk
}

// capHerokuRetries lowers the retry budget of a command that must answer quickly (a preflight).
// Call it before the client is built.
func (f *Factory) capHerokuRetries(d time.Duration) {
	if f.HerokuRetryBudget <= 0 || f.HerokuRetryBudget > d {
		f.HerokuRetryBudget = d
	}
}

// Destinations opens every destination ARCHIVE_URL names for writing (dest.OpenAll); they are
// closed when the command ends.
func (f *Factory) Destinations(ctx context.Context) dest.Opened {
	cfg := f.config()
	opened := dest.OpenAll(ctx, f.Logger(), cfg.Env(), cfg.Archives)
	f.closers = append(f.closers, opened)
	return opened
}

// Source opens the destination the command reads archives from (the configuration's Archive);
// it is closed when the command ends.
func (f *Factory) Source(ctx context.Context) (*dest.Source, error) {
	cfg := f.config()
	src, err := dest.OpenSource(ctx, cfg.Env(), cfg.Archive)
	if err != nil {
		return nil, err
	}
	f.closers = append(f.closers, src)
	return src, nil
}

// readSource opens the destination a command reads archives from (Source); a failure is logged
// once and ends the command with exit status 1.
func (f *Factory) readSource(ctx context.Context, cfg config.Config) (*dest.Source, error) {
	src, err := f.Source(ctx)
	if err != nil {
		log := f.Logger()
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot open the archive")
		return nil, exitWith(ExitFailed)
	}
	return src, nil
}

// begin tells the heartbeat that the run (what: "the backup") started, and returns when. A
// failed ping is a warning: the run goes on.
func (f *Factory) begin(ctx context.Context, n *notify.Notifier, what string) time.Time {
	started := f.Now()
	if err := n.Start(ctx); err != nil {
		log := f.Logger()
		log.Warn().Err(err).Msg("heartbeat start ping failed (" + what + " goes on)")
	}
	return started
}

// close closes what the command opened.
func (f *Factory) close() {
	for _, c := range f.closers {
		c.Close()
	}
	f.closers = nil
}

// secrets are the configured values that must never be written anywhere, and extra ones a
// command knows of (a database URL given on the command line).
func secrets(cfg config.Config, extra ...string) []string {
	return append(cfg.Secrets(), extra...)
}

// newRedactor scrubs the secrets from everything a command writes.
func newRedactor(cfg config.Config, extra ...string) *logging.Redactor {
	red := &logging.Redactor{}
	red.Add(secrets(cfg, extra...)...)
	return red
}
