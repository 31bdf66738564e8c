package cli

import (
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/config"
)

// runMethod adds to a run's start line how its targets are archived: env:VAR targets always by
// pg_dump, Heroku targets by BACKUP_METHOD; BACKUP_MODE (capture or latest) only when a target
// uses Heroku's backups.
func runMethod(cfg config.Config) func(*zerolog.Event) {
	herokuTargets, envTargets := 0, 0
	for _, t := range cfg.Targets {
		if t.Env {
			envTargets++
		} else {
			herokuTargets++
		}
	}
	return func(e *zerolog.Event) {
		switch {
		case herokuTargets == 0 || cfg.Method == config.MethodPgDump:
			e.Str("method", config.MethodPgDump)
		case envTargets == 0:
			e.Str("mode", cfg.Mode).Str("method", cfg.Method)
		default:
			e.Str("mode", cfg.Mode).Str("method", cfg.Method+" for Heroku targets, "+config.MethodPgDump+" for env: targets")
		}
	}
}
