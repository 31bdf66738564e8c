package config

// HowArchived says how a run's targets are archived: env:VAR targets always by pg_dump, Heroku
// targets by BACKUP_METHOD; mode (BACKUP_MODE, capture or latest) is empty when no target uses
// Heroku's backups.
func (c Config) HowArchived() (mode, method string) {
	herokuTargets, envTargets := 0, 0
	for _, t := range c.Targets {
		if t.Env {
			envTargets++
		} else {
			herokuTargets++
		}
	}
	switch {
	case herokuTargets == 0 || c.Method == MethodPgDump:
		return "", MethodPgDump
	case c.Method == MethodFork: // with no env: target, which the configuration refuses
		return "", MethodFork
	case envTargets == 0:
		return c.Mode, c.Method
	default:
		return c.Mode, c.Method + " for Heroku targets, " + MethodPgDump + " for env: targets"
	}
}

// memoryHeadroom is what the process may hold beyond ARCHIVE_MEMORY_LIMIT's buffers: the
// runtime, the SDK, the check's queue of compressed data.
const memoryHeadroom = 12 << 20

// RuntimeMemoryLimit is the memory limit the Go runtime is given for a backup run, 0 for none.
// Without it, garbage (each download range is a fresh buffer) may grow the heap to twice what
// is live before the collector runs, and a run with two S3 destinations would pass 128 MiB.
// GOMEMLIMIT, when set, wins.
func (c Config) RuntimeMemoryLimit() int64 {
	if c.GoMemLimitSet || c.MemoryLimit <= 0 {
		return 0
	}
	return c.MemoryLimit + memoryHeadroom
}
