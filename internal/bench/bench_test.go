//go:build bench

// Package bench measures pgoffsite against the pipeline users otherwise run
// (`curl URL | aws s3 cp - s3://...`), side by side in one run, on real pg_dump archives served
// through the Heroku simulator's signed URL, with and without a per-connection bandwidth cap
// (Toxiproxy), into the same MinIO. Run it with bin/bench.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const token = "bench-api-key-0123456789"

// capKBps is the per-connection cap standing in for S3's per-connection throughput.
const capKBps = 20_000

// modes are the ARCHIVE_CHECK settings measured, the default first.
var modes = []string{"auto", "full", "header"}

type measure struct {
	tool    string
	size    string
	link    string
	bytes   int64
	wall    time.Duration
	rssKiB  int64
	diskKiB int64   // written to local disk (ru_oublock × 512 B)
	framing string  // ARCHIVE_CHECK=auto: tables checked for framing only, of all tables
	conns   string  // pgoffsite: the download connections it chose, and why
	cores   float64 // the machine's cores busy on average during the run (/proc/stat)
}

func (m measure) mbps() float64 { return float64(m.bytes) / m.wall.Seconds() / 1e6 }

func moduleRoot(t *testing.T) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// benchSim serves the archive at path as the newest backup of app "bench" through the Heroku
// simulator, and returns the simulator, the backup's number and the API URLs.
func benchSim(t *testing.T, pg *testenv.Postgres, path string) (sim *herokusim.Sim, num int, platform, data string) {
	sim = herokusim.New(herokusim.Options{Token: token, PgDump: pg.Bin("pg_dump")})
	sim.AddApp("bench")
	addon := sim.AddDatabase("bench", "DATABASE", "heroku-postgresql:standard-0", pg.DSN("postgres"))
	num = sim.AddBackup("bench", addon, path)
	platform, data = herokusim.Serve(t, sim)
	return sim, num, platform, data
}

// build compiles pgoffsite into bin.
func build(t *testing.T, root, bin string) {
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "pgoffsite")).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
}

// dump returns a cached real pg_dump archive of a database holding about size bytes of
// incompressible data, making it on first use.
func dump(t *testing.T, pg *testenv.Postgres, size int64, name string) string {
	dir := filepath.Join(testenv.CacheDir(), "bench")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".dump")
	if fi, err := os.Stat(path); err == nil && fi.Size() > size*9/10 {
		return path
	}
	t.Logf("making a %s pg_dump archive (once; cached in %s)", name, dir)
	db, dsn := pg.CreateDB(t, "bench")
	pg.Exec(t, db, "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE blobs (id int PRIMARY KEY, b bytea);")
	rows := size / 1024
	for start := int64(0); start < rows; start += 65536 {
		pg.Exec(t, db, fmt.Sprintf("INSERT INTO blobs SELECT g, gen_random_bytes(1024) FROM generate_series(%d, %d) g", start, min(start+65535, rows-1)))
	}
	tmp := path + ".tmp"
	if out, err := exec.Command(pg.Bin("pg_dump"), "-Fc", "--no-owner", "--no-acl", "-d", dsn, "-f", tmp).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", "DROP DATABASE "+db)
	return path
}

var (
	rssRE  = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	outRE  = regexp.MustCompile(`File system outputs: (\d+)`)
	wallRE = regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)`)
)

// timed runs cmd under /usr/bin/time -v and reads wall time, peak RSS and disk writes.
func timed(t *testing.T, env []string, name string, args ...string) (time.Duration, int64, int64) {
	wall, rss, disk, _ := timedOut(t, env, name, args...)
	return wall, rss, disk
}

// timedOut is timed, with what the command printed.
func timedOut(t *testing.T, env []string, name string, args ...string) (time.Duration, int64, int64, string) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", name}, args...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, tail(out.String(), 3000))
	}
	s := out.String()
	rss, _ := strconv.ParseInt(match(rssRE, s), 10, 64)
	blocks, _ := strconv.ParseInt(match(outRE, s), 10, 64)
	return parseWall(match(wallRE, s)), rss, blocks / 2, s
}

var (
	connsRE = regexp.MustCompile(`\bconnections=(\d+)`)
	maxRE   = regexp.MustCompile(`\bmax_connections=(\d+)`)
	whyRE   = regexp.MustCompile(`why="([^"]*)"`)
)

// connections reads the last "download connections chosen" line of a run's log: "8 of 16: why".
func connections(out string) string {
	var last string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "download connections chosen") {
			last = l
		}
	}
	if last == "" {
		return "?"
	}
	return fmt.Sprintf("%s of %s: %s", match(connsRE, last), match(maxRE, last), match(whyRE, last))
}

func match(re *regexp.Regexp, s string) string {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func parseWall(s string) time.Duration {
	parts := strings.Split(s, ":")
	var secs float64
	for _, p := range parts {
		v, _ := strconv.ParseFloat(p, 64)
		secs = secs*60 + v
	}
	return time.Duration(secs * float64(time.Second))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestPipelineBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	minio := testenv.StartMinIO(t)
	toxi := testenv.StartToxiproxy(t)
	bucket := minio.CreateBucket(t, "bench")
	aws := "/usr/bin/aws"
	if _, err := os.Stat(aws); err != nil {
		t.Fatal("Debian's awscli (/usr/bin/aws) is needed for the baseline: bin/bench installs it")
	}
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)

	sizes := []struct {
		name  string
		bytes int64
	}{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}}
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		sizes = sizes[:1]
	}
	rounds := 2
	links := []string{"capped", "uncapped"}
	// For a look at one cell while working on it: PGOFFSITE_BENCH_ONLY=1GiB/uncapped runs that
	// archive and link, one round, and writes nothing.
	if only := os.Getenv("PGOFFSITE_BENCH_ONLY"); only != "" {
		size, link, _ := strings.Cut(only, "/")
		sizes = slices.DeleteFunc(sizes, func(s struct {
			name  string
			bytes int64
		}) bool {
			return s.name != size
		})
		links, rounds = []string{link}, 1
		os.Unsetenv("PGOFFSITE_BENCH_WRITE")
	}

	var results []measure
	for _, size := range sizes {
		path := dump(t, pg, size.bytes, size.name)
		fi, _ := os.Stat(path)

		sim, num, platform, data := benchSim(t, pg, path)
		storage := httptest.NewServer(sim.Storage())
		defer storage.Close()
		proxy := toxi.Proxy(t, strings.TrimPrefix(storage.URL, "http://"))
		proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": capKBps})

		for _, link := range links {
			if link == "capped" {
				sim.SetStorageURL("http://" + proxy.Listen)
			} else {
				sim.SetStorageURL(storage.URL)
			}
			for round := 0; round < rounds; round++ {
				// Each round runs pgoffsite in each check mode (the whole job, Heroku calls
				// included) and the usual pipeline, in the opposite order to the round before:
				// whichever runs first in a round meets the page cache still writing back the
				// last run's gigabyte, and none should always be that one.
				runs := append(slices.Clone(modes), "baseline")
				if round%2 == 1 {
					slices.Reverse(runs)
				}
				for _, mode := range runs {
					if mode == "baseline" {
						url := publicURL(t, data, num)
						key := fmt.Sprintf("s3://%s/baseline-%s-%s-%d/b.dump", bucket, size.name, link, round)
						script := fmt.Sprintf(`curl -sSf "$SRC" | %s --endpoint-url %s s3 cp - %s`, aws, minio.Endpoint, key)
						wall, rss, disk := timed(t, append(baseEnv(minio), "SRC="+url), "sh", "-c", script)
						results = append(results, measure{tool: "curl | aws s3 cp", size: size.name, link: link, bytes: fi.Size(), wall: wall, rssKiB: rss, diskKiB: disk})
						continue
					}
					prefix := fmt.Sprintf("pgoffsite-%s-%s-%s-%d", mode, size.name, link, round)
					env := append(baseEnv(minio), "HEROKU_API_KEY="+token, "BACKUP_TARGETS=bench", "BACKUP_MODE=latest", "BACKUP_MAX_AGE=8760h",
						"ARCHIVE_URL=s3://"+bucket+"/"+prefix, "ARCHIVE_CHECK="+mode,
						"HEROKU_API_URL="+platform, "HEROKU_DATA_API_URL="+data, "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=info")
					wall, rss, disk, out := timedOut(t, env, bin, "backup")
					m := measure{tool: "pgoffsite " + mode, size: size.name, link: link, bytes: fi.Size(), wall: wall, rssKiB: rss, diskKiB: disk, conns: connections(out)}
					if mode == "auto" {
						m.framing = framingOnly(t, minio, bucket, prefix)
					}
					results = append(results, m)
				}
			}
		}

		// The sink limit: the same bytes from a local file with the SDK at its best settings.
		start := time.Now()
		sinkUpload(t, minio, bucket, "sink-"+size.name+"/b.dump", path)
		results = append(results, measure{tool: "sink (local file, SDK)", size: size.name, link: "-", bytes: fi.Size(), wall: time.Since(start)})
	}
	report(t, root, results)
}

// framingOnly reads the manifest a run wrote under prefix and says how many of its tables were
// checked for framing only.
func framingOnly(t *testing.T, m *testenv.MinIO, bucket, prefix string) string {
	ctx := context.Background()
	c := m.Client(t)
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		if !strings.HasSuffix(*o.Key, ".json") {
			continue
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		var man struct {
			Structure struct {
				Tables []struct {
					FramingOnly bool `json:"framing_only"`
				} `json:"tables"`
			} `json:"structure"`
		}
		err = json.NewDecoder(out.Body).Decode(&man)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tb := range man.Structure.Tables {
			if tb.FramingOnly {
				n++
			}
		}
		return fmt.Sprintf("%d of %d", n, len(man.Structure.Tables))
	}
	t.Fatalf("no manifest under %s", prefix)
	return ""
}

func baseEnv(m *testenv.MinIO) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey, "AWS_REGION=" + m.Region, "AWS_DEFAULT_REGION=" + m.Region,
		"AWS_ENDPOINT_URL_S3=" + m.Endpoint, "AWS_CA_BUNDLE=" + os.Getenv("AWS_CA_BUNDLE")}
}

func publicURL(t *testing.T, data string, num int) string {
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/client/v11/apps/bench/transfers/%d/actions/public-url", data, num), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ URL string }
	json.NewDecoder(resp.Body).Decode(&out)
	return out.URL
}

// sinkUpload uploads a local file with 64 MiB parts, 8 at a time, straight from the file.
func sinkUpload(t *testing.T, m *testenv.MinIO, bucket, key, path string) {
	ctx := context.Background()
	c := m.Client(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	const part = 64 << 20
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	n := int((fi.Size() + part - 1) / part)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			off := int64(i) * part
			size := min(part, fi.Size()-off)
			out, err := c.UploadPart(gctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: io.NewSectionReader(f, off, size), ContentLength: aws.Int64(size)})
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
}

// report prints the figures and, with PGOFFSITE_BENCH_WRITE set, writes docs/BENCHMARKS.md.
func report(t *testing.T, root string, results []measure) {
	type key struct{ tool, size, link string }
	best := map[key]measure{}
	for _, r := range results {
		k := key{r.tool, r.size, r.link}
		if b, ok := best[k]; !ok || r.wall < b.wall {
			r.rssKiB = max(r.rssKiB, b.rssKiB) // peak RSS: the worst round
			best[k] = r
		} else {
			b.rssKiB = max(b.rssKiB, r.rssKiB)
			b.diskKiB = max(b.diskKiB, r.diskKiB)
			best[k] = b
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| archive | link | baseline MB/s |")
	for _, mode := range modes {
		fmt.Fprintf(&b, " pgoffsite MB/s (%s) | ratio |", mode)
	}
	fmt.Fprintf(&b, " auto: framing-only tables | auto: connections | pgoffsite peak RSS | baseline peak RSS | pgoffsite disk writes | sink MB/s | auto / sink |\n")
	fmt.Fprintf(&b, "|---|---|---|%s---|---|---|---|---|---|---|\n", strings.Repeat("---|---|", len(modes)))
	var sizes, links, misses []string
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.size] {
			seen[r.size] = true
			sizes = append(sizes, r.size)
		}
		if !seen[r.link] && r.link != "-" {
			seen[r.link] = true
			links = append(links, r.link)
		}
	}
	for _, size := range sizes {
		sink := best[key{"sink (local file, SDK)", size, "-"}]
		for _, link := range links {
			base := best[key{"curl | aws s3 cp", size, link}]
			linkName := fmt.Sprintf("%d MB/s per connection", capKBps/1000)
			if link == "uncapped" {
				linkName = "loopback, no cap"
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f |", size, linkName, base.mbps())
			var rss, disk int64
			for _, mode := range modes {
				p := best[key{"pgoffsite " + mode, size, link}]
				fmt.Fprintf(&b, " %.1f | %.2f× |", p.mbps(), p.mbps()/base.mbps())
				rss, disk = max(rss, p.rssKiB), max(disk, p.diskKiB)
			}
			auto := best[key{"pgoffsite auto", size, link}]
			fmt.Fprintf(&b, " %s | %s | %.0f MiB | %.0f MiB | %d KiB | %.1f | %.2f |\n", auto.framing, auto.conns, float64(rss)/1024,
				float64(base.rssKiB)/1024, disk, sink.mbps(), auto.mbps()/sink.mbps())
			misses = append(misses, pipelineMisses(size, link, base, auto, best[key{"pgoffsite header", size, link}], rss, disk)...)
		}
	}
	t.Logf("\n%s", b.String())
	for _, r := range results {
		t.Logf("%-24s %-7s %-9s %8.1f MB/s  %6.0f MiB RSS  %d KiB disk  %s  %s", r.tool, r.size, r.link, r.mbps(), float64(r.rssKiB)/1024, r.diskKiB, r.framing, r.conns)
	}
	// The targets are checked after the figures are written, so a miss is on record.
	defer func() {
		for _, m := range misses {
			t.Error(m)
		}
	}()
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	cpu := runtime.NumCPU()
	doc := fmt.Sprintf(`# Benchmarks

Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s), best of %d alternating rounds per cell; peak RSS is the
worst round. Each round runs `+"`pgoffsite backup`"+` (the whole job: Heroku API calls through the simulator,
the download from the signed URL, the upload into MinIO) once with each `+"`ARCHIVE_CHECK`"+` (auto, the
default; full; header) and the usual pipeline
`+"`curl -sSf URL | aws s3 cp - s3://...`"+` (Debian's awscli) once, in the opposite order to the round
before, on the same real pg_dump archive of incompressible data, into the same MinIO. "%d MB/s per connection" puts Toxiproxy with a bandwidth
toxic between the downloader and the signed URL, as S3 serves one connection at a fraction of a
host's bandwidth. The sink is the same bytes uploaded from a local file with the AWS SDK (64 MiB
parts, 8 in flight): the most this MinIO on this machine takes. "Connections" is the auto run's
`+"`download connections chosen`"+` log line: how many ranges it settled on, of `+"`ARCHIVE_CONCURRENCY`"+`, and why.

%s
Disk writes are the process's file-system output (ru_oublock) as reported by `+"`/usr/bin/time -v`"+`.

Unit-level benchmarks of the hot path (allocations included): `+"`bin/bench`"+` also runs
`+"`go test -run XXX -bench . -benchmem ./internal/fetch ./internal/s3store ./internal/archive ./internal/pgdump`"+`.
`, time.Now().UTC().Format("2006-01-02"), cpu, runtime.GOOS, runtime.GOARCH, host, 2, capKBps/1000, b.String())
	// The reading of the figures is written by hand below them; keep it.
	path := filepath.Join(root, "docs", "BENCHMARKS.md")
	if old, err := os.ReadFile(path); err == nil {
		if i := bytes.Index(old, []byte("\n## ")); i >= 0 {
			doc += string(old[i:])
		}
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Targets of the pipeline at the default settings.
const (
	cappedTarget   = 6.0 // × the baseline under the per-connection cap
	uncappedTarget = 2.0 // × the baseline on loopback at 1 GiB
	autoAgainstHdr = 0.9 // auto's throughput against header's
	rssTargetKiB   = 128 << 10
)

// pipelineMisses says which targets one archive and link missed.
func pipelineMisses(size, link string, base, auto, header measure, rssKiB, diskKiB int64) []string {
	var out []string
	ratio := auto.mbps() / base.mbps()
	switch {
	case link == "capped" && ratio < cappedTarget:
		out = append(out, fmt.Sprintf("%s capped: %.2f× the baseline, under %.0f×", size, ratio, cappedTarget))
	case link == "uncapped" && size == "1GiB" && ratio < uncappedTarget:
		out = append(out, fmt.Sprintf("%s uncapped: %.2f× the baseline, under %.0f×", size, ratio, uncappedTarget))
	}
	if r := auto.mbps() / header.mbps(); r < autoAgainstHdr {
		out = append(out, fmt.Sprintf("%s %s: auto moved %.2f× what header did, under %.1f×", size, link, r, autoAgainstHdr))
	}
	if rssKiB > rssTargetKiB {
		out = append(out, fmt.Sprintf("%s %s: peak RSS %d MiB, over 128 MiB", size, link, rssKiB>>10))
	}
	if diskKiB > 0 {
		out = append(out, fmt.Sprintf("%s %s: %d KiB written to local disk", size, link, diskKiB))
	}
	return out
}
