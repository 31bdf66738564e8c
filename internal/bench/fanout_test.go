//go:build bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The many-targets section of docs/BENCHMARKS.md lies between these markers.
const (
	fanoutBegin   = "<!-- many-targets figures: rewritten by TestFanoutBenchmark (bin/bench) -->"
	fanoutEnd     = "<!-- end of the many-targets figures -->"
	fanoutHeading = "Many targets: sequential, BACKUP_PARALLEL, BACKUP_FANOUT"
)

// fanoutCapture is how long each simulated Heroku capture runs: on Heroku the capture, not the
// transfer, is most of a small database's time, and it is what one target after another waits on.
const fanoutCapture = 15 * time.Second

// TestFanoutBenchmark measures six targets (BACKUP_MODE=capture, each capture held
// fanoutCapture on the simulator, a 24 MB dump each) archived one after another, with
// BACKUP_PARALLEL=3 in one process, and with BACKUP_FANOUT=3 over the simulator's one-off dynos
// (local processes of the same binary): wall time and the coordinator's or the process's peak RSS.
func TestFanoutBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	bucket := m.CreateBucket(t, "fanout")
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)
	name, dsn := pg.CreateDB(t, "fanout")
	pg.Exec(t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 24000) g;`)
	sim := herokusim.New(herokusim.Options{Token: token, PgDump: pg.Bin("pg_dump")})
	var apps []string
	for i := range 6 {
		app := fmt.Sprintf("shop-%c", 'a'+i)
		sim.AddDatabase(app, "DATABASE", "heroku-postgresql:standard-0", dsn)
		apps = append(apps, app)
	}
	platform, data := herokusim.Serve(t, sim)
	sim.Faults().SlowCaptures(fanoutCapture)
	sim.SetDynoCommand("pgoffsite", bin)

	type variant struct{ name, parallel, fanout string }
	variants := []variant{{"one after another", "1", "0"}, {"BACKUP_PARALLEL=3", "3", "0"}, {"BACKUP_FANOUT=3", "1", "3"}}
	load0 := loadavg()
	var rows strings.Builder
	fmt.Fprintf(&rows, "| run | wall time | against one after another | peak RSS |\n|---|---|---|---|\n")
	var first time.Duration
	for i, v := range variants {
		vars := map[string]string{"HEROKU_API_KEY": token, "BACKUP_TARGETS": strings.Join(apps, " "), "BACKUP_MODE": "capture",
			"ARCHIVE_URL": "s3://" + bucket + "/" + fmt.Sprint(i), "HEROKU_API_URL": platform, "HEROKU_DATA_API_URL": data,
			"S3_FORCE_PATH_STYLE": "true", "LOG_LEVEL": "warn", "BACKUP_PARALLEL": v.parallel, "BACKUP_FANOUT": v.fanout,
			"HEROKU_APP_NAME": "pgoffsite-bench", "AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey,
			"AWS_REGION": m.Region, "AWS_ENDPOINT_URL_S3": m.Endpoint}
		sim.SetConfigVars("pgoffsite-bench", vars)
		env := baseEnv(m)
		for k, val := range vars {
			env = append(env, k+"="+val)
		}
		wall, rss, _ := timed(t, env, bin, "backup")
		if i == 0 {
			first = wall
		}
		fmt.Fprintf(&rows, "| %s | %.1f s | %.2f× | %.0f MiB |\n", v.name, wall.Seconds(), first.Seconds()/wall.Seconds(), float64(rss)/1024)
	}
	if peak := sim.MaxConcurrentDynos(); peak > 3 {
		t.Errorf("%d dynos at once with BACKUP_FANOUT=3", peak)
	}
	t.Logf("\n%s", rows.String())
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end).
Six targets, `+"`BACKUP_MODE=capture`"+`, each capture held %s by the simulator (on Heroku the capture
is most of a small database's time), each dump 24 MB, into one MinIO. BACKUP_FANOUT's one-off
dynos are local processes of the same binary started by the simulator, so their figures include
a process start per target and share this machine's CPUs, where real dynos would not; peak RSS is
the coordinator's. "Against" is how many times faster than one after another.

%s%s`, fanoutBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		fanoutCapture, rows.String(), fanoutEnd)
	writeSection(t, root, fanoutBegin, fanoutEnd, fanoutHeading, section)
}
