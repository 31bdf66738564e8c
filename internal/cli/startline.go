package cli

import (
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// logStart writes a backup or bundle run's start line: how many targets, how they are archived,
// where, and to whom they are encrypted.
func logStart(log zerolog.Logger, cfg config.Config, command string, fanout bool, enc archive.Encrypter) {
	ev := log.Info().Str("version", version.Version).Int("targets", len(cfg.Targets)).Func(runMethod(cfg)).
		Int("parallel", cfg.Parallel).Int("fanout", map[bool]int{true: cfg.Fanout}[fanout]).
		Strs("destinations", dest.Names(cfg.Archives))
	if enc != nil {
		fps := []string{}
		for _, r := range enc.Describe() {
			fps = append(fps, r.Fingerprint)
		}
		ev = ev.Strs("encrypted_to", fps)
	}
	ev.Msg(command + " run started")
}

// howArchived says how a run's targets are archived: env:VAR targets always by pg_dump, Heroku
// targets by BACKUP_METHOD; mode (BACKUP_MODE, capture or latest) is empty when no target uses
// Heroku's backups.
func howArchived(cfg config.Config) (mode, method string) {
	herokuTargets, envTargets := 0, 0
	for _, t := range cfg.Targets {
		if t.Env {
			envTargets++
		} else {
			herokuTargets++
		}
	}
	switch {
	case herokuTargets == 0 || cfg.Method == config.MethodPgDump:
		return "", config.MethodPgDump
	case envTargets == 0:
		return cfg.Mode, cfg.Method
	default:
		return cfg.Mode, cfg.Method + " for Heroku targets, " + config.MethodPgDump + " for env: targets"
	}
}

// runMethod adds howArchived to a run's start line.
func runMethod(cfg config.Config) func(*zerolog.Event) {
	mode, method := howArchived(cfg)
	return func(e *zerolog.Event) {
		if mode != "" {
			e.Str("mode", mode)
		}
		e.Str("method", method)
	}
}
