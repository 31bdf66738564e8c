//go:build bench

package bench

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The throttling section of docs/BENCHMARKS.md lies between these markers.
const (
	slowBegin   = "<!-- throttling figures: rewritten by TestSlowDownBenchmark (bin/bench) -->"
	slowEnd     = "<!-- end of the throttling figures -->"
	slowHeading = "A source that throttles"
	slowLimit   = 6 // downloads the source serves at once before 503 SlowDown
	// curlTool names the usual pipeline in the table (the bar escaped for Markdown).
	curlTool = "`curl \\| aws s3 cp -`"
)

// TestSlowDownBenchmark measures how many connections the download settles on when the source
// paces each connection at 20 MB/s in the server (as S3 does) and, in the second variant, answers
// 503 SlowDown past six requests at once: the run must complete, on six connections or fewer.
func TestSlowDownBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	minio := testenv.StartMinIO(t)
	bucket := minio.CreateBucket(t, "slowdown")
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)
	path := dump(t, pg, 256<<20, "256MiB")
	fi, _ := os.Stat(path)
	sim, num, platform, data := benchSim(t, pg, path)
	storage := httptest.NewServer(testenv.PacedHandler(sim.Storage(), capKBps*1000))
	defer storage.Close()
	sim.SetStorageURL(storage.URL)

	type row struct {
		variant string
		m       measure
		refused int
	}
	var rows []row
	load0 := loadavg()
	for round := 0; round < 2; round++ {
		for _, limit := range []int{0, slowLimit} {
			sim.Faults().LimitStorage(limit)
			before := sim.Faults().StorageRefused()
			prefix := fmt.Sprintf("limit%d-%d", limit, round)
			env := append(baseEnv(minio), "HEROKU_API_KEY="+token, "BACKUP_TARGETS=bench", "BACKUP_MODE=latest", "BACKUP_MAX_AGE=8760h",
				"ARCHIVE_URL=s3://"+bucket+"/"+prefix, "HEROKU_API_URL="+platform, "HEROKU_DATA_API_URL="+data,
				"S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=info")
			wall, rss, disk, out := timedOut(t, env, bin, "backup") // a failed run fails the test
			name := "no throttling"
			if limit > 0 {
				name = fmt.Sprintf("503 SlowDown past %d at once", limit)
			}
			rows = append(rows, row{name, measure{tool: "pgoffsite", bytes: fi.Size(), wall: wall, rssKiB: rss, diskKiB: disk, conns: connections(out)},
				sim.Faults().StorageRefused() - before})
		}
		sim.Faults().LimitStorage(0)
		url := publicURL(t, data, num)
		key := fmt.Sprintf("s3://%s/baseline-%d/b.dump", bucket, round)
		script := fmt.Sprintf(`curl -sSf "$SRC" | /usr/bin/aws --endpoint-url %s s3 cp - %s`, minio.Endpoint, key)
		wall, rss, disk := timed(t, append(baseEnv(minio), "SRC="+url), "sh", "-c", script)
		rows = append(rows, row{"no throttling", measure{tool: curlTool, bytes: fi.Size(), wall: wall, rssKiB: rss, diskKiB: disk, conns: "1"}, 0})
	}
	// Best round per variant and tool.
	type key struct{ variant, tool string }
	best := map[key]row{}
	var order []key
	for _, r := range rows {
		k := key{r.variant, r.m.tool}
		b, ok := best[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || r.m.wall < b.m.wall {
			best[k] = r
		}
	}
	base := best[key{"no throttling", curlTool}].m
	var b strings.Builder
	fmt.Fprintf(&b, "| source | tool | MB/s | against the baseline | connections chosen | requests refused | peak RSS | disk writes |\n|---|---|---|---|---|---|---|---|\n")
	for _, k := range order {
		r := best[k]
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f× | %s | %d | %.0f MiB | %d KiB |\n", k.variant, k.tool, r.m.mbps(), r.m.mbps()/base.mbps(),
			r.m.conns, r.refused, float64(r.m.rssKiB)/1024, r.m.diskKiB)
	}
	t.Logf("\n%s", b.String())
	limited := best[key{fmt.Sprintf("503 SlowDown past %d at once", slowLimit), "pgoffsite"}]
	var n, of int
	fmt.Sscanf(limited.m.conns, "%d of %d", &n, &of)
	if n < 1 || n > slowLimit || n >= of || limited.refused == 0 {
		t.Errorf("with SlowDown past %d: settled at %q after %d refusals; want at most %d, under the maximum, after at least one", slowLimit, limited.m.conns, limited.refused, slowLimit)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of 2 rounds. The 256MiB archive above, served by the simulator's storage paced at %d MB/s per
request in the server (as S3 paces one connection), first as it is, then answering 503 SlowDown to
any request past %d at once (`+"`Faults.LimitStorage`"+`), archived by `+"`pgoffsite backup`"+` at the default
settings (`+"`ARCHIVE_CONCURRENCY=16`"+`) into MinIO; the baseline is `+"`curl | aws s3 cp -`"+` from the
same source. "Connections chosen" is the run's `+"`download connections chosen`"+` log line.

%s%s`, slowBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		capKBps/1000, slowLimit, b.String(), slowEnd)
	writeSection(t, root, slowBegin, slowEnd, slowHeading, section)
}
