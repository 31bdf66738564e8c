//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
	"github.com/pgoffsite/pgoffsite/internal/verify/settest"
)

const (
	restoreBegin   = "<!-- restore figures: rewritten by TestRestoreBenchmark (bin/bench) -->"
	restoreEnd     = "<!-- end of the restore figures -->"
	restoreHeading = "Restoring: a set in parallel sessions"

	restoreJobsTool   = "pgoffsite restore --jobs 2 (a set)"
	restoreSingleTool = "aws s3 cp - | pg_restore --single-transaction"
	restoreFileTool   = "pg_restore -j 2 (a local file)"
)

// benchSetKey is where the set is stored: a key as the backup makes them.
const benchSetKey = "bench/DATABASE/2026/11/02/bench-DATABASE-p001-20261102T030000Z.dump"

// TestRestoreBenchmark measures `pgoffsite restore --jobs 2` of a set (two data parts) from MinIO
// against the two usual ways back: the same database's single custom-format stream piped from
// MinIO into `pg_restore --single-transaction`, and `pg_restore -j 2` from a local file (the
// file already on disk: its download is not counted). One database of eight tables of random
// bytea, one of them 40 % of the data, each with a primary key and a second index.
func TestRestoreBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	minio := testenv.StartMinIO(t)
	bucket := minio.CreateBucket(t, "bench")
	awsBin := "/usr/bin/aws"
	if _, err := os.Stat(awsBin); err != nil {
		t.Fatal("Debian's awscli (/usr/bin/aws) is needed for the baseline: bin/bench installs it")
	}
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)

	name, size := "512MiB", int64(512<<20)
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		name, size = "64MiB", 64<<20
	}
	src, dsn := eightTables(t, pg, size)
	// The set: part 1 the big table and the smallest, part 2 the other six; the dump the schema.
	set := settest.Dump(t, pg, dsn, benchSetKey, [][][2]string{
		{{"public", "t1"}, {"public", "t8"}},
		{{"public", "t2"}, {"public", "t3"}, {"public", "t4"}, {"public", "t5"}, {"public", "t6"}, {"public", "t7"}},
	})
	set.Store(t, minioPut{minio.Client(t), bucket, "set/"})
	single := pg.Dump(t, dsn) // -Fc --no-owner
	setBytes := int64(0)
	for _, s := range set.Streams {
		setBytes += int64(len(s))
	}
	file := filepath.Join(t.TempDir(), "single.dump")
	if err := os.WriteFile(file, single, 0o600); err != nil {
		t.Fatal(err)
	}
	settest.Put(t, minioPut{minio.Client(t), bucket, ""}, "single.dump", single)
	want := rowsOf(t, pg, src)

	const rounds = 2
	load0 := loadavg()
	t.Logf("load average %s", load0)
	env := append(baseEnv(minio), "ARCHIVE_URL=s3://"+bucket+"/set", "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn")
	var results []measure
	for round := 0; round < rounds; round++ {
		into := func(tool string, archive int64, run func(dsn string) (time.Duration, int64, int64)) func() {
			return func() {
				db, target := pg.CreateDB(t, "bench_restored")
				wall, rss, disk := run(target)
				if got := rowsOf(t, pg, db); got != want {
					t.Fatalf("%s restored %s, want %s", tool, got, want)
				}
				results = append(results, measure{tool: tool, size: name, link: "-", bytes: archive, wall: wall, rssKiB: rss, diskKiB: disk})
				pg.Exec(t, "postgres", `DROP DATABASE "`+db+`"`)
			}
		}
		runs := []func(){
			into(restoreJobsTool, setBytes, func(target string) (time.Duration, int64, int64) {
				return timed(t, env, bin, "restore", "--from", benchSetKey, "--to", target, "--jobs", "2")
			}),
			into(restoreSingleTool, int64(len(single)), func(target string) (time.Duration, int64, int64) {
				script := fmt.Sprintf(`%s --endpoint-url %s s3 cp s3://%s/single.dump - | %s --single-transaction --no-owner --no-acl --exit-on-error -d "$DST"`,
					awsBin, minio.Endpoint, bucket, pg.Bin("pg_restore"))
				return timed(t, append(baseEnv(minio), "DST="+target), "bash", "-o", "pipefail", "-c", script)
			}),
			into(restoreFileTool, int64(len(single)), func(target string) (time.Duration, int64, int64) {
				return timed(t, baseEnv(minio), pg.Bin("pg_restore"), "-j", "2", "--no-owner", "--no-acl", "--exit-on-error", "-d", target, file)
			}),
		}
		for i := range runs {
			if round%2 == 0 {
				runs[i]()
			} else {
				runs[len(runs)-1-i]()
			}
		}
	}
	restoreReport(t, root, name, results, rounds, load0)
}

// minioPut writes objects into a MinIO bucket under prefix.
type minioPut struct {
	c      *s3.Client
	bucket string
	prefix string
}

func (p minioPut) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, err = p.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.bucket, Key: aws.String(p.prefix + obj.Key), Body: bytes.NewReader(b)})
	return err
}

// eightTables makes a database of about size bytes of random bytea in eight tables, t1 holding
// 40 % of it and t2..t8 the rest in equal shares, each with a primary key and an index on a
// second column.
func eightTables(t *testing.T, pg *testenv.Postgres, size int64) (string, string) {
	t.Logf("making a database of eight tables of random bytea (%d MiB)", size>>20)
	db, dsn := pg.CreateDB(t, "bench_restore")
	pg.Exec(t, db, "CREATE EXTENSION IF NOT EXISTS pgcrypto")
	rows := size / 1024
	for i := 1; i <= 8; i++ {
		n := rows * 6 / 10 / 7
		if i == 1 {
			n = rows * 4 / 10
		}
		pg.Exec(t, db, fmt.Sprintf(`CREATE TABLE t%d (id int PRIMARY KEY, k int, b bytea);
			INSERT INTO t%d SELECT g, (g * 7919) %% 100003, gen_random_bytes(1024) FROM generate_series(1, %d) g;
			CREATE INDEX t%d_k ON t%d (k);`, i, i, n, i, i))
	}
	pg.Exec(t, db, "VACUUM ANALYZE")
	return db, dsn
}

// rowsOf is the row count of the big table, one of the six and the smallest.
func rowsOf(t *testing.T, pg *testenv.Postgres, db string) string {
	out2, err := pg.Query(db, `SELECT (SELECT count(*) FROM t1) || ' ' || (SELECT count(*) FROM t2) || ' ' || (SELECT count(*) FROM t8)`)
	if err != nil {
		t.Fatalf("count rows of %s: %v: %s", db, err, out2)
	}
	return out2
}

// restoreReport prints the figures and, with PGOFFSITE_BENCH_WRITE set, rewrites the restore
// section of docs/BENCHMARKS.md (appending it the first time).
func restoreReport(t *testing.T, root, size string, results []measure, rounds int, load0 string) {
	best := bestOf(results)
	base := best[restoreSingleTool]
	var b strings.Builder
	fmt.Fprintf(&b, "| database | archive | way back | wall time | speed-up | peak RSS | disk writes |\n|---|---|---|---|---|---|---|\n")
	for _, tool := range []string{restoreSingleTool, restoreFileTool, restoreJobsTool} {
		m := best[tool]
		fmt.Fprintf(&b, "| %s | %.0f MiB | %s | %.1f s | %.2f× | %.0f MiB | %d KiB |\n", size, float64(m.bytes)/(1<<20),
			"`"+strings.ReplaceAll(m.tool, "|", `\|`)+"`", m.wall.Seconds(), base.wall.Seconds()/m.wall.Seconds(), float64(m.rssKiB)/1024, m.diskKiB)
	}
	t.Logf("\n%s", b.String())
	for _, r := range results {
		t.Logf("%-48s %10d bytes %7.1f s  %6.0f MiB RSS  %d KiB disk", r.tool, r.bytes, r.wall.Seconds(), float64(r.rssKiB)/1024, r.diskKiB)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the runs of a round in alternating order; peak RSS and disk writes are the worst
round. One database of %s of random `+"`bytea`"+` in eight tables (one of 40 %%), each with a primary key
and a second index, in a local PostgreSQL, restored each time into a new, empty database:
`+"`pgoffsite restore --jobs 2`"+` of a set (the schema's stream and two data parts, made as
`+"`PG_DUMP_JOBS=2`"+` makes them) from MinIO; the same database's one `+"`pg_dump -Fc`"+` stream piped from
MinIO with Debian's awscli into `+"`pg_restore --single-transaction`"+`; and `+"`pg_restore -j 2`"+` of that
stream from a local file (already on disk: its download is not counted, its size is what
`+"`--scratch`"+` would write first). Peak RSS is that of the largest process of each (pgoffsite or one of
its pg_restore sessions; aws or pg_restore). Disk writes are the measured process tree's own
(pgoffsite writes the small entry lists of the post-data sessions only); the server's writes are
not counted.

%s%s`, restoreBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, size, b.String(), restoreEnd)
	writeSection(t, root, restoreBegin, restoreEnd, restoreHeading, section)
}
