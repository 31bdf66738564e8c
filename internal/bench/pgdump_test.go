//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The pg_dump section of docs/BENCHMARKS.md lies between these markers; TestPgDumpBenchmark
// rewrites only what is between them, so the pgbackups figures and every hand-written reading
// stay. report() keeps everything from the file's first "## " heading, so the section survives
// TestPipelineBenchmark too.
const (
	pgdumpBegin   = "<!-- pg_dump figures: rewritten by TestPgDumpBenchmark (bin/bench) -->"
	pgdumpEnd     = "<!-- end of the pg_dump figures -->"
	pgdumpHeading = "The pg_dump source"
)

// pgdumpRSSLimitKiB is the target for pgoffsite's peak RSS with the pg_dump source.
const pgdumpRSSLimitKiB = 128 << 10

// TestPgDumpBenchmark measures the pg_dump source (`BACKUP_TARGETS=env:VAR`) against
// `pg_dump | aws s3 cp -` on one real database of incompressible data, the same database for
// both, in alternating rounds, into the same MinIO.
func TestPgDumpBenchmark(t *testing.T) {
	root, pg, minio, bucket, awsBin, bin := dumpBench(t)

	name, size := "1GiB", int64(1<<30)
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		name, size = "256MiB", 256<<20
	}
	dsn := randomDatabase(t, pg, size, name)
	pgDump := pg.Bin("pg_dump")
	const rounds = 2
	// The machine may be shared: the load says how much.
	load0 := loadavg()
	t.Logf("load average %s", load0)

	var results []measure
	for round := 0; round < rounds; round++ {
		runPgoffsite := func(tool, mode string) {
			prefix := fmt.Sprintf("pgoffsite-pgdump-%s-%d", mode, round)
			env := append(baseEnv(minio), "BACKUP_TARGETS=env:BENCH_DATABASE_URL", "BENCH_DATABASE_URL="+dsn,
				"PG_DUMP_PATH="+pgDump, "ARCHIVE_URL=s3://"+bucket+"/"+prefix, "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn")
			if mode != "" {
				env = append(env, "ARCHIVE_CHECK="+mode)
			}
			wall, rss, disk := timed(t, env, bin, "backup")
			results = append(results, measure{tool: tool, size: name, link: "-", bytes: dumpBytes(t, minio, bucket, prefix),
				wall: wall, rssKiB: rss, diskKiB: disk, framing: framingOnly(t, minio, bucket, prefix)})
		}
		runs := []func(){
			// The default settings: what the targets are about.
			func() { runPgoffsite(pgoffsiteTool, "") },
			func() {
				prefix := fmt.Sprintf("baseline-pgdump-%d", round)
				script := fmt.Sprintf(`%s %s -d "$SRC" | %s --endpoint-url %s s3 cp - s3://%s/%s/b.dump`,
					pgDump, strings.Join(pgDumpArgs, " "), awsBin, minio.Endpoint, bucket, prefix)
				// pipefail: a failing pg_dump fails the round, not only a short object.
				wall, rss, disk := timed(t, append(baseEnv(minio), "SRC="+dsn), "bash", "-o", "pipefail", "-c", script)
				results = append(results, measure{tool: baselineTool, size: name, link: "-", bytes: dumpBytes(t, minio, bucket, prefix),
					wall: wall, rssKiB: rss, diskKiB: disk})
			},
			// For the reading only: what the archive check costs beside pg_dump on this machine.
			func() { runPgoffsite(headerTool, "header") },
		}
		inTurn(round, runs)
	}
	for _, r := range results {
		if r.bytes < size*9/10 {
			t.Fatalf("%s made a dump of %d bytes, less than the database's %d: a failed dump", r.tool, r.bytes, size)
		}
	}
	pgdumpReport(t, root, name, results, rounds, load0)
}

// dumpBench is what the benchmarks of a real database need: the module's root, PostgreSQL,
// MinIO with a bucket, Debian's aws for the baseline, and pgoffsite built.
func dumpBench(t *testing.T) (root string, pg *testenv.Postgres, minio *testenv.MinIO, bucket, awsBin, bin string) {
	root = moduleRoot(t)
	pg = testenv.StartPostgres(t)
	minio = testenv.StartMinIO(t)
	bucket = minio.CreateBucket(t, "bench")
	awsBin = "/usr/bin/aws"
	if _, err := os.Stat(awsBin); err != nil {
		t.Fatal("Debian's awscli (/usr/bin/aws) is needed for the baseline: bin/bench installs it")
	}
	bin = filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)
	return root, pg, minio, bucket, awsBin, bin
}

// inTurn runs a round's runs, in reverse on odd rounds, so that none always runs first or last.
func inTurn(round int, runs []func()) {
	for i := range runs {
		if round%2 == 0 {
			runs[i]()
		} else {
			runs[len(runs)-1-i]()
		}
	}
}

const (
	pgoffsiteTool = "pgoffsite"
	baselineTool  = "pg_dump | aws s3 cp"
	headerTool    = "pgoffsite, ARCHIVE_CHECK=header"
)

// pgDumpArgs are the baseline's flags: those of Heroku's logical backups, as the pg_dump source uses.
var pgDumpArgs = []string{"-Fc", "--no-acl", "--no-owner", "--quote-all-identifiers"}

// randomDatabase makes a database holding about size bytes of incompressible bytea (1 KiB rows),
// in the test's own PostgreSQL (nothing cached): its custom-format dump is about as large.
func randomDatabase(t *testing.T, pg *testenv.Postgres, size int64, name string) string {
	t.Logf("making a %s database of random bytea (a few minutes)", name)
	start := time.Now()
	db, dsn := pg.CreateDB(t, "bench_pgdump")
	pg.Exec(t, db, "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE blobs (id int PRIMARY KEY, b bytea);")
	// 5% more rows than size/1 KiB, so that the dump is at least size bytes.
	rows := size / 1024 * 21 / 20
	for first := int64(0); first < rows; first += 65536 {
		pg.Exec(t, db, fmt.Sprintf("INSERT INTO blobs SELECT g, gen_random_bytes(1024) FROM generate_series(%d, %d) g", first, min(first+65535, rows-1)))
	}
	pg.Exec(t, db, "VACUUM ANALYZE blobs")
	t.Logf("database made in %s", time.Since(start).Round(time.Second))
	return dsn
}

// dumpBytes is the size of the dump object under prefix (its largest object: the manifest is small).
func dumpBytes(t *testing.T, m *testenv.MinIO, bucket, prefix string) int64 {
	c := m.Client(t)
	list, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range list.Contents {
		if !strings.HasSuffix(*o.Key, ".json") && o.Size != nil {
			n = max(n, *o.Size)
		}
	}
	if n == 0 {
		t.Fatalf("no dump under %s", prefix)
	}
	return n
}

// pgdumpReport prints the figures and, with PGOFFSITE_BENCH_WRITE set, rewrites the pg_dump
// section of docs/BENCHMARKS.md (appending it the first time), leaving the rest of the file.
func pgdumpReport(t *testing.T, root, size string, results []measure, rounds int, load0 string) {
	best := bestOf(results)
	p, base := best[pgoffsiteTool], best[baselineTool]
	var b strings.Builder
	fmt.Fprintf(&b, "| database | dump | tool | wall time | MB/s | ratio | peak RSS | disk writes |\n|---|---|---|---|---|---|---|---|\n")
	for _, m := range []measure{base, p, best[headerTool]} {
		fmt.Fprintf(&b, "| %s | %.0f MiB | %s | %.1f s | %.1f | %.2f× | %.0f MiB | %d KiB |\n", size, float64(m.bytes)/(1<<20),
			"`"+strings.ReplaceAll(m.tool, "|", `\|`)+"`", m.wall.Seconds(), m.mbps(), m.mbps()/base.mbps(), float64(m.rssKiB)/1024, m.diskKiB)
	}
	t.Logf("\n%s", b.String())
	for _, r := range results {
		t.Logf("%-20s %8d bytes %7.1f s %8.1f MB/s  %6.0f MiB RSS  %d KiB disk  framing-only tables: %s", r.tool, r.bytes, r.wall.Seconds(), r.mbps(), float64(r.rssKiB)/1024, r.diskKiB, r.framing)
	}
	if p.mbps() < base.mbps() {
		t.Errorf("pgoffsite's pg_dump source moved %.1f MB/s, below pg_dump | aws s3 cp's %.1f MB/s (ratio %.2f, target ≥ 1.0)", p.mbps(), base.mbps(), p.mbps()/base.mbps())
	}
	if p.rssKiB > pgdumpRSSLimitKiB {
		t.Errorf("pgoffsite's peak RSS with the pg_dump source was %.0f MiB, over the 128 MiB target", float64(p.rssKiB)/1024)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the runs of a round in alternating order; peak RSS and disk writes are the worst
round. One real database of %s of random `+"`bytea`"+` (1 KiB rows, one table) in a local PostgreSQL, the
same for every run. Each round runs `+"`pgoffsite backup`"+` with `+"`BACKUP_TARGETS=env:BENCH_DATABASE_URL`"+`
at the default `+"`ARCHIVE_CHECK`"+` (pg_dump streams into MinIO at a size known only at its end), the
usual pipeline
`+"`pg_dump %s -d URL | aws s3 cp - s3://...`"+`
(the same pg_dump, Debian's awscli), and, for the reading only, `+"`pgoffsite backup`"+` with `+"`ARCHIVE_CHECK=header`"+`, all into the same MinIO.
MB/s is each run's dump bytes over its wall time; the ratio is against the pipeline. Peak RSS is
that of the largest process of each (pgoffsite or its pg_dump; pg_dump or aws).

%s%s`, pgdumpBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, size, strings.Join(pgDumpArgs, " "), b.String(), pgdumpEnd)
	writeSection(t, root, pgdumpBegin, pgdumpEnd, pgdumpHeading, section)
}

// bestOf is each tool's fastest round, with the worst peak RSS and disk writes of its rounds.
func bestOf(results []measure) map[string]measure {
	best := map[string]measure{}
	for _, r := range results {
		b, ok := best[r.tool]
		if !ok || r.wall < b.wall {
			r.rssKiB, r.diskKiB = max(r.rssKiB, b.rssKiB), max(r.diskKiB, b.diskKiB)
			best[r.tool] = r
		} else {
			b.rssKiB, b.diskKiB = max(b.rssKiB, r.rssKiB), max(b.diskKiB, r.diskKiB)
			best[r.tool] = b
		}
	}
	return best
}

// loadavg is the one-minute load average, or "unknown".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// writeSection puts section in place of its part of docs/BENCHMARKS.md (see spliceSection).
func writeSection(t *testing.T, root, begin, end, heading, section string) {
	path := filepath.Join(root, "docs", "BENCHMARKS.md")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, spliceSection(old, begin, end, heading, section), 0o644); err != nil {
		t.Fatal(err)
	}
}

// spliceSection puts section (markers included) in place of the part of doc between begin and
// end, or appends it under heading when doc has none yet.
func spliceSection(doc []byte, begin, end, heading, section string) []byte {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i >= 0 && j > i {
		out := append([]byte{}, doc[:i]...)
		out = append(out, section...)
		return append(out, doc[j+len(end):]...)
	}
	out := append(bytes.TrimRight(doc, "\n"), "\n\n## "+heading+"\n\n"...)
	return append(append(out, section...), '\n')
}

// The pg_dump section is appended once, then replaced in place; everything around it stays.
func TestSpliceSection(t *testing.T) {
	doc := []byte("# Benchmarks\n\ntable\n\n## Against the targets\n\nreading\n")
	first := spliceSection(doc, pgdumpBegin, pgdumpEnd, pgdumpHeading, pgdumpBegin+"\nA\n"+pgdumpEnd)
	want := "# Benchmarks\n\ntable\n\n## Against the targets\n\nreading\n\n## The pg_dump source\n\n" + pgdumpBegin + "\nA\n" + pgdumpEnd + "\n"
	if string(first) != want {
		t.Fatalf("appended:\n%s", first)
	}
	withReading := append(first, "\nhand-written reading\n"...)
	second := spliceSection(withReading, pgdumpBegin, pgdumpEnd, pgdumpHeading, pgdumpBegin+"\nB\n"+pgdumpEnd)
	if got := strings.Replace(string(withReading), "\nA\n", "\nB\n", 1); string(second) != got {
		t.Fatalf("replaced:\n%s", second)
	}
}
