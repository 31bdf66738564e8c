package config

import "testing"

// env:VAR targets are archived by pg_dump whatever BACKUP_METHOD and BACKUP_MODE say, and the
// mode counts only where Heroku's backups are used.
func TestHowArchived(t *testing.T) {
	shop := Target{App: "shop", Database: "DATABASE_URL"}
	legacy := Target{App: "env", Database: "LEGACY_URL", Env: true}
	for _, tc := range []struct {
		name              string
		cfg               Config
		wantMode, wantHow string
	}{
		{"env: targets only", Config{Targets: []Target{legacy}, Method: MethodPGBackups, Mode: "capture"}, "", "pg_dump"},
		{"Heroku targets by pgbackups", Config{Targets: []Target{shop}, Method: MethodPGBackups, Mode: "latest"}, "latest", "pgbackups"},
		{"Heroku targets by pg_dump", Config{Targets: []Target{shop}, Method: MethodPgDump, Mode: "capture"}, "", "pg_dump"},
		{"both", Config{Targets: []Target{shop, legacy}, Method: MethodPGBackups, Mode: "capture"}, "capture", "pgbackups for Heroku targets, pg_dump for env: targets"},
	} {
		if mode, how := tc.cfg.HowArchived(); mode != tc.wantMode || how != tc.wantHow {
			t.Errorf("%s: HowArchived() = %q, %q; want %q, %q", tc.name, mode, how, tc.wantMode, tc.wantHow)
		}
	}
}

// The runtime is given ARCHIVE_MEMORY_LIMIT and the headroom beyond the buffers, unless
// GOMEMLIMIT sets its limit or there is no budget.
func TestRuntimeMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want int64
	}{
		{Config{MemoryLimit: 128 << 20}, 128<<20 + memoryHeadroom},
		{Config{MemoryLimit: 128 << 20, GoMemLimitSet: true}, 0},
		{Config{}, 0},
	} {
		if got := tc.cfg.RuntimeMemoryLimit(); got != tc.want {
			t.Errorf("%+v: RuntimeMemoryLimit() = %d, want %d", tc.cfg, got, tc.want)
		}
	}
}
