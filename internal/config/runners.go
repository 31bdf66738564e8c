package config

import (
	"regexp"
	"slices"
	"strconv"

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
)

// dynoSizeRE is a Heroku dyno size name (GET /dyno-sizes): standard-1X, performance-M, private-L…
var dynoSizeRE = regexp.MustCompile(`^(?i)[a-z]+(-[a-z0-9]+)?$`)

// compressRE is what PG_DUMP_COMPRESS takes of pg_dump's --compress: a gzip level, or (pg_dump
// 16 and newer) a method with an optional level.
var compressRE = regexp.MustCompile(`^([0-9]|none|(gzip|lz4|zstd)(:[0-9]{1,2})?)$`)

// runners reads how targets are spread: BACKUP_PARALLEL in this process, BACKUP_FANOUT over
// one-off dynos of BACKUP_DYNO_SIZE; and how one target is dumped by pg_dump: PG_DUMP_JOBS
// streams, less what PG_DUMP_EXCLUDE_TABLE_DATA and PG_DUMP_EXCLUDE_SCHEMA leave out,
// compressed as PG_DUMP_COMPRESS says.
func (ck *checker) runners(e env, c *Config) {
	n, err := strconv.Atoi(e.Parallel)
	if err != nil || n < 1 || n > 16 {
		ck.add("BACKUP_PARALLEL", ck.q(e.Parallel)+" is not a number from 1 to 16", "use 1 (the default: one target after another) or e.g. 3; the targets share ARCHIVE_MEMORY_LIMIT")
		n = 1
	}
	c.Parallel = n
	j, err := strconv.Atoi(e.PgDumpJobs)
	if err != nil || j < 1 || j > 16 {
		ck.add("PG_DUMP_JOBS", ck.q(e.PgDumpJobs)+" is not a number from 1 to 16", "use 1 (the default: one pg_dump, one stream) or e.g. 4 pg_dump processes sharing one snapshot; each is a connection to the database")
		j = 1
	}
	c.PgDumpJobs = j
	c.PgDumpExcludeTableData, c.PgDumpExcludeSchema = envlist.Split(e.PgDumpExcludeData), envlist.Split(e.PgDumpExcludeNS)
	c.PgDumpCompress = e.PgDumpCompress
	if e.PgDumpCompress != "" && !compressRE.MatchString(e.PgDumpCompress) {
		ck.add("PG_DUMP_COMPRESS", ck.q(e.PgDumpCompress)+" is not a pg_dump compression", "use a gzip level from 0 (none) to 9, e.g. 1 (fastest), or with pg_dump 16 or newer gzip:N, lz4, lz4:N, zstd or zstd:N; unset, pg_dump's default (gzip level 6)")
	}
	f, err := strconv.Atoi(e.Fanout)
	if err != nil || f < 0 || f > 50 {
		ck.add("BACKUP_FANOUT", ck.q(e.Fanout)+" is not a number from 0 to 50", "use 0 (the default: every target in this dyno) or the number of one-off dynos to run at once, within the account's limit (Heroku allows 50 on Basic and Standard, 5 on Performance and Private, 1 on Eco)")
		f = 0
	}
	c.Fanout = f
	c.DynoSize = e.DynoSize
	if !dynoSizeRE.MatchString(e.DynoSize) || len(e.DynoSize) > 40 {
		ck.add("BACKUP_DYNO_SIZE", ck.q(e.DynoSize)+" is not a dyno size", "use a name `heroku ps:type` lists, e.g. standard-1X, standard-2X or performance-M")
	}
}

// StreamsPerTarget is how many streams one target's archive may take at once: PG_DUMP_JOBS when
// some target is dumped with pg_dump, else one. The memory budget divides by it.
func (c Config) StreamsPerTarget() int {
	if _, method := c.HowArchived(); method == MethodPgDump || slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Env }) {
		return max(1, c.PgDumpJobs)
	}
	return 1
}
