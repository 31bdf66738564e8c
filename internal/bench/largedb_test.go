//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The large-database section of docs/BENCHMARKS.md lies between these markers.
const (
	largeBegin   = "<!-- large-database figures: rewritten by TestLargeDatabaseBenchmark (bin/bench) -->"
	largeEnd     = "<!-- end of the large-database figures -->"
	largeHeading = "A large database: PG_DUMP_JOBS"
)

const (
	jobsTool      = "pgoffsite, PG_DUMP_JOBS=2"
	directoryTool = "pg_dump -Fd -j 2 to local disk"
)

// largeTables is how the large database's bytes are shared among its tables: one holding 44 %,
// seven 8 % each.
var largeTables = []int{44, 8, 8, 8, 8, 8, 8, 8}

// largeDatabase is the large database in pg, made from its cached copy
// (~/.cache/pgoffsite/bench/large-NAME.dump, uncompressed, restored with pg_restore -j 2), or, the
// first time, by largeScript and then cached.
func largeDatabase(t *testing.T, pg *testenv.Postgres, size int64, name string) string {
	dir := filepath.Join(testenv.CacheDir(), "bench")
	os.MkdirAll(dir, 0o755)
	cache := filepath.Join(dir, "large-"+name+".dump")
	db, dsn := pg.CreateDB(t, "bench_large")
	start := time.Now()
	if _, err := os.Stat(cache); err == nil {
		t.Logf("restoring the %s database from %s", name, cache)
		if out, err := exec.Command(pg.Bin("pg_restore"), "-j", "2", "--no-owner", "-d", dsn, cache).CombinedOutput(); err != nil {
			t.Fatalf("pg_restore %s: %v\n%s", cache, err, out)
		}
	} else {
		t.Logf("making the %s database (once; cached in %s)", name, dir)
		pg.Exec(t, db, largeScript(size))
		tmp := cache + ".tmp"
		if out, err := exec.Command(pg.Bin("pg_dump"), "-Fc", "-Z0", "--no-owner", "--no-acl", "-d", dsn, "-f", tmp).CombinedOutput(); err != nil {
			t.Fatalf("pg_dump: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, cache); err != nil {
			t.Fatal(err)
		}
	}
	pg.Exec(t, db, "VACUUM ANALYZE")
	t.Logf("database ready in %s", time.Since(start).Round(time.Second))
	return dsn
}

// largeScript makes the tables of largeTables, of about size bytes in all, of incompressible
// 1 KiB bytea rows: the dump is about as large as the data.
func largeScript(size int64) string {
	var b strings.Builder
	b.WriteString("CREATE EXTENSION IF NOT EXISTS pgcrypto;\n")
	for i, pct := range largeTables {
		rows := size / 1024 * int64(pct) / 100
		fmt.Fprintf(&b, "CREATE TABLE t%d (id int PRIMARY KEY, b bytea);\n", i)
		for first := int64(0); first < rows; first += 65536 {
			fmt.Fprintf(&b, "INSERT INTO t%d SELECT g, gen_random_bytes(1024) FROM generate_series(%d, %d) g;\n", i, first, min(first+65535, rows-1))
		}
	}
	return b.String()
}

// TestLargeDatabaseBenchmark measures PG_DUMP_JOBS=2 against `pg_dump -Fc | aws s3 cp -` and
// against `pg_dump -Fd -j 2` to local disk, on a database of eight tables, one of 44 % of the
// data, in alternating rounds. The archive's size is beside each time. The restore side
// (restore --jobs 2 against pg_restore --single-transaction and pg_restore -j 2) belongs beside
// it, on the same database (largeDatabase), as TestLargeDatabaseRestoreBenchmark.
func TestLargeDatabaseBenchmark(t *testing.T) {
	root, pg, minio, bucket, awsBin, bin := dumpBench(t)
	name, size := "2GiB", int64(2<<30)
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		name, size = "256MiB", 256<<20
	}
	dsn := largeDatabase(t, pg, size, name)
	pgDump := pg.Bin("pg_dump")
	load0 := loadavg()
	const rounds = 2
	var results []measure
	for round := 0; round < rounds; round++ {
		runs := []func(){
			func() {
				prefix := fmt.Sprintf("jobs-%d", round)
				env := append(baseEnv(minio), "BACKUP_TARGETS=env:BENCH_DATABASE_URL", "BENCH_DATABASE_URL="+dsn, "PG_DUMP_JOBS=2",
					"PG_DUMP_PATH="+pgDump, "ARCHIVE_URL=s3://"+bucket+"/"+prefix, "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn")
				wall, rss, disk := timed(t, env, bin, "backup")
				results = append(results, measure{tool: jobsTool, size: name, bytes: storedBytes(t, minio, bucket, prefix), wall: wall, rssKiB: rss, diskKiB: disk})
			},
			func() {
				prefix := fmt.Sprintf("pipe-%d", round)
				script := fmt.Sprintf(`%s %s -d "$SRC" | %s --endpoint-url %s s3 cp - s3://%s/%s/b.dump`,
					pgDump, strings.Join(pgDumpArgs, " "), awsBin, minio.Endpoint, bucket, prefix)
				wall, rss, disk := timed(t, append(baseEnv(minio), "SRC="+dsn), "bash", "-o", "pipefail", "-c", script)
				results = append(results, measure{tool: baselineTool, size: name, bytes: storedBytes(t, minio, bucket, prefix), wall: wall, rssKiB: rss, diskKiB: disk})
			},
			func() {
				dir := filepath.Join(t.TempDir(), "dump")
				args := append([]string{"-Fd", "-j", "2", "-f", dir, "-d", dsn}, pgDumpArgs[1:]...)
				wall, rss, disk := timed(t, baseEnv(minio), pgDump, args...)
				results = append(results, measure{tool: directoryTool, size: name, bytes: dirBytes(t, dir), wall: wall, rssKiB: rss, diskKiB: disk})
				os.RemoveAll(dir)
			},
		}
		inTurn(round, runs)
	}
	for _, r := range results {
		if r.bytes < size*9/10 {
			t.Fatalf("%s made an archive of %d bytes, less than the database's %d: a failed dump", r.tool, r.bytes, size)
		}
	}
	largeReport(t, root, name, results, rounds, load0)
}

// storedBytes is what the objects under prefix hold, manifests aside: a set's streams together.
func storedBytes(t *testing.T, m *testenv.MinIO, bucket, prefix string) int64 {
	list, err := m.Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range list.Contents {
		if !strings.HasSuffix(*o.Key, ".json") && o.Size != nil {
			n += *o.Size
		}
	}
	return n
}

// dirBytes is what the files of dir hold.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// largeReport prints the figures and, with PGOFFSITE_BENCH_WRITE set, rewrites the large-database
// section of docs/BENCHMARKS.md.
func largeReport(t *testing.T, root, size string, results []measure, rounds int, load0 string) {
	best := bestOf(results)
	base := best[baselineTool]
	var b strings.Builder
	fmt.Fprintf(&b, "| database | tool | wall time | archive | MB/s of archive | against the pipe | peak RSS | disk writes |\n|---|---|---|---|---|---|---|---|\n")
	for _, tool := range []string{baselineTool, jobsTool, directoryTool} {
		m := best[tool]
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %.0f MiB | %.1f | %.2f× | %.0f MiB | %.0f MiB |\n", size, "`"+strings.ReplaceAll(m.tool, "|", `\|`)+"`",
			m.wall.Seconds(), float64(m.bytes)/(1<<20), m.mbps(), base.wall.Seconds()/m.wall.Seconds(), float64(m.rssKiB)/1024, float64(m.diskKiB)/1024)
	}
	t.Logf("\n%s", b.String())
	for _, r := range results {
		t.Logf("%-32s %8d bytes %7.1f s %6.0f MiB RSS %8d KiB disk", r.tool, r.bytes, r.wall.Seconds(), float64(r.rssKiB)/1024, r.diskKiB)
	}
	if j := best[jobsTool]; j.rssKiB > pgdumpRSSLimitKiB {
		t.Errorf("PG_DUMP_JOBS=2's peak RSS was %.0f MiB, over the 128 MiB target", float64(j.rssKiB)/1024)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the runs of a round in alternating order; peak RSS and disk writes are the worst
round. One real database of %s of random `+"`bytea`"+` in eight tables, one holding 44 %% of it, in a
local PostgreSQL (made once by `+"`largeScript`"+` and cached as `+"`~/.cache/pgoffsite/bench/large-%s.dump`"+`).
Each round runs `+"`pgoffsite backup`"+` with `+"`PG_DUMP_JOBS=2`"+` into MinIO, `+"`pg_dump %s | aws s3 cp -`"+` into
the same MinIO, and `+"`pg_dump -Fd -j 2`"+` into a local directory. The archive is what each stored (a
set's streams together); "against the pipe" is the pipe's wall time over the run's. Peak RSS is the
largest process of each run.

%s%s`, largeBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, size, size, strings.Join(pgDumpArgs, " "), b.String(), largeEnd)
	writeSection(t, root, largeBegin, largeEnd, largeHeading, section)
}
