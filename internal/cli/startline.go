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

// runMethod adds config.HowArchived to a run's start line.
func runMethod(cfg config.Config) func(*zerolog.Event) {
	mode, method := cfg.HowArchived()
	return func(e *zerolog.Event) {
		if mode != "" {
			e.Str("mode", mode)
		}
		e.Str("method", method)
	}
}
