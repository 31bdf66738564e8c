package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// The start line says how the targets are archived: env:VAR targets by pg_dump whatever
// BACKUP_METHOD and BACKUP_MODE say, and the mode only where Heroku's backups are used.
func TestStartLineMethod(t *testing.T) {
	shop := config.Target{App: "shop", Database: "DATABASE_URL"}
	legacy := config.Target{App: "env", Database: "LEGACY_URL", Env: true}
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		want    []string
		notWant string
	}{
		{"env: targets only", config.Config{Targets: []config.Target{legacy}, Method: config.MethodPGBackups, Mode: "capture"}, []string{"method=pg_dump"}, "mode="},
		{"Heroku targets by pgbackups", config.Config{Targets: []config.Target{shop}, Method: config.MethodPGBackups, Mode: "latest"}, []string{"mode=latest", "method=pgbackups"}, ""},
		{"Heroku targets by pg_dump", config.Config{Targets: []config.Target{shop}, Method: config.MethodPgDump, Mode: "capture"}, []string{"method=pg_dump"}, "mode="},
		{"both", config.Config{Targets: []config.Target{shop, legacy}, Method: config.MethodPGBackups, Mode: "capture"},
			[]string{"mode=capture", `method="pgbackups for Heroku targets, pg_dump for env: targets"`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := logging.New(&buf, "logfmt", "info", nil)
			log.Info().Func(runMethod(tc.cfg)).Msg("backup run started")
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: want %q", strings.TrimSpace(out), w)
				}
			}
			if tc.notWant != "" && strings.Contains(out, tc.notWant) {
				t.Errorf("%s: want no %q", strings.TrimSpace(out), tc.notWant)
			}
		})
	}
}

// lineWith is the first line of out that contains s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
