//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
	largeHeading = "A large database: PG_DUMP_JOBS and restore --jobs"
)

// The ways a large database is dumped, and restored, side by side.
const (
	pipeZ1Tool    = "pg_dump -Z1 | aws s3 cp"
	jobsTool      = "pgoffsite, PG_DUMP_JOBS=2"
	jobsZ1Tool    = "pgoffsite, PG_DUMP_JOBS=2, PG_DUMP_COMPRESS=1"
	directoryTool = "pg_dump -Fd -j 2 to local disk"

	singleBack    = "aws s3 cp - | pg_restore --single-transaction"
	jobsBack      = "pgoffsite restore --jobs 2 (the PG_DUMP_JOBS=2 set)"
	jobsZ1Back    = "pgoffsite restore --jobs 2 (the PG_DUMP_COMPRESS=1 set)"
	directoryBack = "pg_restore -j 2 from the local directory"
)

// largeTables is how the large database's bytes are shared among its tables: one holding 44 %,
// seven 8 % each.
var largeTables = []int{44, 8, 8, 8, 8, 8, 8, 8}

// largeDatabase is the large database in pg, made from its cached copy
// (~/.cache/pgoffsite/bench/large-NAME.dump, uncompressed, restored with pg_restore -j 2), or, the
// first time, by largeScript and then cached. Each table then gets a second index, so that a
// restore has indexes to build besides the primary keys.
func largeDatabase(t *testing.T, pg *testenv.Postgres, size int64, name string) (string, string) {
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
	for i := range largeTables {
		pg.Exec(t, db, fmt.Sprintf("CREATE INDEX t%d_bucket ON t%d ((id %% 1000))", i, i))
	}
	pg.Exec(t, db, "VACUUM ANALYZE")
	t.Logf("database ready in %s", time.Since(start).Round(time.Second))
	return db, dsn
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

// largeRows is every table's row count and index count in db, as one string to compare.
func largeRows(t *testing.T, pg *testenv.Postgres, db string) string {
	var q []string
	for i := range largeTables {
		q = append(q, fmt.Sprintf("(SELECT count(*) FROM t%d)", i))
	}
	out, err := pg.Query(db, "SELECT "+strings.Join(q, " || ' ' || ")+" || ' / ' || (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')")
	if err != nil {
		t.Fatalf("count the rows of %s: %v: %s", db, err, out)
	}
	return out
}

// TestLargeDatabaseBenchmark measures, on one database of eight tables (one of 44 % of the
// data), in alternating rounds, the way out and the way back. Out: PG_DUMP_JOBS=2, with
// pg_dump's default compression and with PG_DUMP_COMPRESS=1, against `pg_dump -Fc | aws s3 cp -`
// (at both levels) and `pg_dump -Fd -j 2` to local disk. Back, each into a new, empty database:
// `restore --jobs 2` of each set against the pipe's stream through `pg_restore
// --single-transaction` and `pg_restore -j 2` from the directory. Beside each time: the archive's
// size, and how many of the machine's cores were busy on average.
func TestLargeDatabaseBenchmark(t *testing.T) {
	root, pg, minio, bucket, awsBin, bin := dumpBench(t)
	name, size := "2GiB", int64(2<<30)
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		name, size = "256MiB", 256<<20
	}
	src, dsn := largeDatabase(t, pg, size, name)
	want := largeRows(t, pg, src)
	pgDump := pg.Bin("pg_dump")
	load0 := loadavg()
	const rounds = 2
	var dumps, restores []measure
	for round := 0; round < rounds; round++ {
		dir := filepath.Join(t.TempDir(), "dump")
		prefix := func(what string) string { return fmt.Sprintf("%s-%d", what, round) }
		pipe := func(tool, what string, z ...string) func() {
			return func() {
				args := append(append(append([]string{}, pgDumpArgs...), z...), "-d", `"$SRC"`)
				script := fmt.Sprintf(`%s %s | %s --endpoint-url %s s3 cp - s3://%s/%s/b.dump`, pgDump, strings.Join(args, " "), awsBin, minio.Endpoint, bucket, prefix(what))
				m := busy(t, append(baseEnv(minio), "SRC="+dsn), "bash", "-o", "pipefail", "-c", script)
				m.tool, m.bytes = tool, storedBytes(t, minio, bucket, prefix(what))
				dumps = append(dumps, m)
			}
		}
		backup := func(tool, what string, env ...string) func() {
			return func() {
				env = append(append(baseEnv(minio), env...), "BACKUP_TARGETS=env:BENCH_DATABASE_URL", "BENCH_DATABASE_URL="+dsn, "PG_DUMP_JOBS=2",
					"PG_DUMP_PATH="+pgDump, "ARCHIVE_URL=s3://"+bucket+"/"+prefix(what), "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn")
				m := busy(t, env, bin, "backup")
				m.tool, m.bytes = tool, storedBytes(t, minio, bucket, prefix(what))
				dumps = append(dumps, m)
			}
		}
		inTurn(round, []func(){
			pipe(baselineTool, "pipe"),
			pipe(pipeZ1Tool, "pipez1", "-Z1"),
			backup(jobsTool, "jobs"),
			backup(jobsZ1Tool, "jobsz1", "PG_DUMP_COMPRESS=1"),
			func() {
				args := append([]string{"-Fd", "-j", "2", "-f", dir, "-d", dsn}, pgDumpArgs[1:]...)
				m := busy(t, baseEnv(minio), pgDump, args...)
				m.tool, m.bytes = directoryTool, dirBytes(t, dir)
				dumps = append(dumps, m)
			},
		})
		into := func(tool, what string, bytes int64, name string, args ...string) func() {
			return func() {
				db, target := pg.CreateDB(t, "bench_restored")
				var env []string
				if what != "" {
					env = []string{"DST=" + target, "ARCHIVE_URL=s3://" + bucket + "/" + prefix(what), "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn"}
				}
				for i, a := range args {
					args[i] = strings.ReplaceAll(a, "$DST", target)
				}
				m := busy(t, append(baseEnv(minio), env...), name, args...)
				if got := largeRows(t, pg, db); got != want {
					t.Fatalf("%s restored %s, want %s", tool, got, want)
				}
				m.tool, m.bytes = tool, bytes
				restores = append(restores, m)
				pg.Exec(t, "postgres", `DROP DATABASE "`+db+`"`)
			}
		}
		inTurn(round, []func(){
			into(singleBack, "pipe", storedBytes(t, minio, bucket, prefix("pipe")), "bash", "-o", "pipefail", "-c",
				fmt.Sprintf(`%s --endpoint-url %s s3 cp s3://%s/%s/b.dump - | %s --single-transaction --no-owner --no-acl --exit-on-error -d "$DST"`,
					awsBin, minio.Endpoint, bucket, prefix("pipe"), pg.Bin("pg_restore"))),
			into(jobsBack, "jobs", storedBytes(t, minio, bucket, prefix("jobs")), bin, "restore", "--from", dumpKey(t, minio, bucket, prefix("jobs")), "--to", "$DST", "--jobs", "2"),
			into(jobsZ1Back, "jobsz1", storedBytes(t, minio, bucket, prefix("jobsz1")), bin, "restore", "--from", dumpKey(t, minio, bucket, prefix("jobsz1")), "--to", "$DST", "--jobs", "2"),
			into(directoryBack, "", dirBytes(t, dir), pg.Bin("pg_restore"), "-j", "2", "--no-owner", "--no-acl", "--exit-on-error", "-d", "$DST", dir),
		})
		os.RemoveAll(dir)
	}
	for _, r := range dumps {
		if r.bytes < size*9/10 {
			t.Fatalf("%s made an archive of %d bytes, less than the database's %d: a failed dump", r.tool, r.bytes, size)
		}
	}
	largeReport(t, root, name, dumps, restores, rounds, load0)
}

// busy runs the command as timed does and adds how many cores the whole machine kept busy on
// average meanwhile (from /proc/stat): the server's and the tools' work alike.
func busy(t *testing.T, env []string, name string, args ...string) measure {
	b0 := busyTicks(t)
	wall, rss, disk := timed(t, env, name, args...)
	return measure{wall: wall, rssKiB: rss, diskKiB: disk, cores: float64(busyTicks(t)-b0) / 100 / wall.Seconds()}
}

// busyTicks is the machine's busy time in clock ticks (USER_HZ, 100 a second): all but idle
// and I/O wait.
func busyTicks(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var n int64
	for i, v := range f[1:] {
		x, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i < 8 { // user nice system [idle iowait] irq softirq steal
			n += x
		}
	}
	return n
}

// dumpKey is the key, under prefix, of the dump a backup wrote there.
func dumpKey(t *testing.T, m *testenv.MinIO, bucket, prefix string) string {
	list, err := m.Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		if strings.HasSuffix(*o.Key, ".dump") {
			return strings.TrimPrefix(*o.Key, prefix+"/")
		}
	}
	t.Fatalf("no dump under %s/", prefix)
	return ""
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
func largeReport(t *testing.T, root, size string, dumps, restores []measure, rounds int, load0 string) {
	table := func(results []measure, base string, tools []string) string {
		best := bestOf(results)
		var b strings.Builder
		fmt.Fprintf(&b, "| database | tool | wall time | archive | against `%s` | cores busy | peak RSS | disk writes |\n|---|---|---|---|---|---|---|---|\n",
			strings.ReplaceAll(base, "|", `\|`))
		for _, tool := range tools {
			m := best[tool]
			fmt.Fprintf(&b, "| %s | %s | %.1f s | %.0f MiB | %.2f× | %.2f | %.0f MiB | %.0f MiB |\n", size, "`"+strings.ReplaceAll(m.tool, "|", `\|`)+"`",
				m.wall.Seconds(), float64(m.bytes)/(1<<20), best[base].wall.Seconds()/m.wall.Seconds(), m.cores, float64(m.rssKiB)/1024, float64(m.diskKiB)/1024)
		}
		return b.String()
	}
	out := table(dumps, baselineTool, []string{baselineTool, pipeZ1Tool, jobsTool, jobsZ1Tool, directoryTool})
	back := table(restores, singleBack, []string{singleBack, directoryBack, jobsBack, jobsZ1Back})
	t.Logf("\n%s\n%s", out, back)
	for _, r := range append(dumps, restores...) {
		t.Logf("%-56s %10d bytes %7.1f s %5.2f cores %6.0f MiB RSS %8d KiB disk", r.tool, r.bytes, r.wall.Seconds(), r.cores, float64(r.rssKiB)/1024, r.diskKiB)
	}
	best := bestOf(append(dumps, restores...))
	for _, tool := range []string{jobsTool, jobsZ1Tool, jobsBack, jobsZ1Back} {
		if j := best[tool]; j.rssKiB > pgdumpRSSLimitKiB || j.diskKiB > 1024 {
			t.Errorf("%s: peak RSS %.0f MiB (target 128 MiB), %d KiB written to disk", tool, float64(j.rssKiB)/1024, j.diskKiB)
		}
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, `%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the runs of a round in alternating order; peak RSS and disk writes are the worst
round. One real database of %s of random `+"`bytea`"+` in eight tables, one holding 44 %% of it, each with
a primary key and a second index, in a local PostgreSQL (made once by `+"`largeScript`"+` and cached as
`+"`~/.cache/pgoffsite/bench/large-%s.dump`"+`). pg_dump's flags are `+"`%s`"+` throughout.

`, largeBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, size, size, strings.Join(pgDumpArgs, " "))
	b.WriteString(`The way out: ` + "`pgoffsite backup`" + ` with ` + "`PG_DUMP_JOBS=2`" + ` into MinIO, with pg_dump's default compression
and with ` + "`PG_DUMP_COMPRESS=1`" + `; ` + "`pg_dump | aws s3 cp -`" + ` into the same MinIO, at the default level and
at ` + "`-Z1`" + `; and ` + "`pg_dump -Fd -j 2`" + ` into a local directory. The archive is what each stored (a set's
streams together).

`)
	b.WriteString(out)
	b.WriteString(`
The way back, each into a new, empty database: ` + "`pgoffsite restore --jobs 2`" + ` of each set, straight from
MinIO; the pipe's stream from MinIO through Debian's awscli into ` + "`pg_restore --single-transaction`" + `; and
` + "`pg_restore -j 2`" + ` from the directory ` + "`pg_dump -Fd -j 2`" + ` wrote (already on disk: its download is
not counted). Each restore's row and index counts are checked against the source.

`)
	b.WriteString(back)
	fmt.Fprintf(&b, `
"Cores busy" is the whole machine's busy time over the run's wall time, out of %d: the server,
MinIO and the tools together. Peak RSS is the largest process of each run; disk writes are the
measured process tree's own (not the server's).
%s`, runtime.NumCPU(), largeEnd)
	writeSection(t, root, largeBegin, largeEnd, largeHeading, b.String())
}
