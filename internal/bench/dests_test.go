//go:build bench

package bench

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The destinations section of docs/BENCHMARKS.md lies between these markers.
const (
	destsBegin   = "<!-- destination figures: rewritten by TestDestinationsBenchmark (bin/bench) -->"
	destsEnd     = "<!-- end of the destination figures -->"
	destsHeading = "Several destinations and encryption"
)

// The variants measured: one S3 destination (what every other figure is), two S3 destinations
// on two servers with their own credentials, and each with age encryption.
var destVariants = []struct {
	name    string
	two     bool
	encrypt bool
}{{"one S3", false, false}, {"two S3", true, false}, {"one S3, encrypted", false, true}, {"two S3, encrypted", true, true}}

// destLinks are the links measured: the capped link with four connections (80 MB/s, where the
// link is the limit), the capped link at the defaults, and loopback.
var destLinks = []string{"link-bound", "capped", "uncapped"}

// destsRSSLimitKiB is the target for peak RSS in every variant.
const destsRSSLimitKiB = 128 << 10

// archiveSize is one archive the destination benchmarks move.
type archiveSize struct {
	name  string
	bytes int64
}

// destSizes are the archives measured: 256 MiB and 1 GiB, or with PGOFFSITE_BENCH_QUICK the
// first alone.
func destSizes() []archiveSize {
	if os.Getenv("PGOFFSITE_BENCH_QUICK") != "" {
		return []archiveSize{{"256MiB", 256 << 20}}
	}
	return []archiveSize{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}}
}

// TestDestinationsBenchmark measures what a second destination and encryption cost: the same
// real archive served through the simulator's signed URL, written by `pgoffsite backup` to one
// MinIO, to two MinIO servers at once (their own credentials, keys=SECOND), and each encrypted to
// an age recipient, in alternating order, with and without the per-connection cap.
func TestDestinationsBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	first := testenv.StartMinIO(t)
	second := testenv.StartOwnMinIO(t)
	toxi := testenv.StartToxiproxy(t)
	bucket1 := first.CreateBucket(t, "dests")
	bucket2 := second.CreateBucket(t, "dests")
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}

	sizes := destSizes()
	const rounds = 2
	load0 := loadavg()
	var results []measure
	for _, sz := range sizes {
		results = append(results, destsRuns(t, pg, bin, first, second, bucket1, bucket2, toxi, id, sz.name, sz.bytes, rounds)...)
	}
	destsReport(t, root, results, rounds, load0)
}

// destsRuns measures every variant on one archive size, with and without the cap.
func destsRuns(t *testing.T, pg *testenv.Postgres, bin string, first, second *testenv.MinIO, bucket1, bucket2 string,
	toxi *testenv.Toxiproxy, id *age.X25519Identity, name string, size int64, rounds int) []measure {
	path := dump(t, pg, size, name)
	fi, _ := os.Stat(path)
	sim, _, platform, data := benchSim(t, pg, path)
	storage := httptest.NewServer(sim.Storage())
	defer storage.Close()
	proxy := toxi.Proxy(t, strings.TrimPrefix(storage.URL, "http://"))
	proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": capKBps})

	var results []measure
	for _, link := range destLinks {
		if link == "uncapped" {
			sim.SetStorageURL(storage.URL)
		} else {
			sim.SetStorageURL("http://" + proxy.Listen)
		}
		for round := 0; round < rounds; round++ {
			for i := range destVariants {
				v := destVariants[i]
				if round%2 == 1 {
					v = destVariants[len(destVariants)-1-i] // alternate the order
				}
				prefix := fmt.Sprintf("%s-%s-%s-%d", strings.NewReplacer(" ", "", ",", "-").Replace(v.name), name, link, round)
				urls := "s3://" + bucket1 + "/" + prefix
				if v.two {
					urls += fmt.Sprintf(" s3://%s/%s?endpoint=%s&region=%s&path_style=true&keys=SECOND", bucket2, prefix, second.Endpoint, second.Region)
				}
				env := append(baseEnv(first), "HEROKU_API_KEY="+token, "BACKUP_TARGETS=bench", "BACKUP_MODE=latest", "BACKUP_MAX_AGE=8760h",
					"ARCHIVE_URL="+urls, "HEROKU_API_URL="+platform, "HEROKU_DATA_API_URL="+data, "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn",
					"SECOND_ACCESS_KEY_ID="+second.AccessKey, "SECOND_SECRET_ACCESS_KEY="+second.SecretKey)
				if v.encrypt {
					env = append(env, "ARCHIVE_RECIPIENTS="+id.Recipient().String())
				}
				if link == "link-bound" {
					env = append(env, "ARCHIVE_CONCURRENCY=4")
				}
				wall, rss, disk := timed(t, env, bin, "backup")
				results = append(results, measure{tool: v.name, size: name, link: link, bytes: fi.Size(), wall: wall, rssKiB: rss, diskKiB: disk})
			}
		}
	}
	return results
}

// destsReport prints the figures, checks the targets and, with PGOFFSITE_BENCH_WRITE set,
// rewrites the destinations section of docs/BENCHMARKS.md.
func destsReport(t *testing.T, root string, results []measure, rounds int, load0 string) {
	type key struct{ tool, size, link string }
	best := map[key]measure{}
	var sizes []string
	for _, r := range results {
		if !slices.Contains(sizes, r.size) {
			sizes = append(sizes, r.size)
		}
		k := key{r.tool, r.size, r.link}
		b, ok := best[k]
		if !ok || r.wall < b.wall {
			r.rssKiB, r.diskKiB = max(r.rssKiB, b.rssKiB), max(r.diskKiB, b.diskKiB)
			best[k] = r
		} else {
			b.rssKiB, b.diskKiB = max(b.rssKiB, r.rssKiB), max(b.diskKiB, r.diskKiB)
			best[k] = b
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| archive | link | destinations | MB/s | against one S3 | peak RSS | disk writes |\n|---|---|---|---|---|---|---|\n")
	for _, size := range sizes {
		for _, link := range destLinks {
			one := best[key{"one S3", size, link}]
			linkName := fmt.Sprintf("%d MB/s per connection", capKBps/1000)
			switch link {
			case "link-bound":
				linkName += ", 4 connections"
			case "uncapped":
				linkName = "loopback, no cap"
			}
			for _, v := range destVariants {
				m := best[key{v.name, size, link}]
				fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.2f× | %.0f MiB | %d KiB |\n", size, linkName, v.name, m.mbps(),
					m.mbps()/one.mbps(), float64(m.rssKiB)/1024, m.diskKiB)
				if link == "link-bound" {
					// The ratios are about what a destination and encryption cost when the link
					// is the limit, as on a dyno; at the defaults on this machine the limit is the
					// CPU that the two MinIO servers share with pgoffsite, which a second server's
					// checksums and writes take from the first.
					if r := m.mbps() / one.mbps(); r < 0.9 {
						t.Errorf("%s moved %.1f MB/s, %.2f× one S3 destination's %.1f MB/s (target ≥ 0.9×)", v.name, m.mbps(), r, one.mbps())
					}
				}
				if m.rssKiB > destsRSSLimitKiB {
					t.Errorf("%s (%s, %s): peak RSS %.0f MiB, over the 128 MiB target", v.name, size, link, float64(m.rssKiB)/1024)
				}
				if m.diskKiB > 0 {
					t.Errorf("%s (%s, %s) wrote %d KiB to local disk", v.name, size, link, m.diskKiB)
				}
			}
		}
	}
	t.Logf("\n%s", b.String())
	for _, r := range results {
		t.Logf("%-20s %-9s %7.1f s %8.1f MB/s  %6.0f MiB RSS  %d KiB disk", r.tool, r.link, r.wall.Seconds(), r.mbps(), float64(r.rssKiB)/1024, r.diskKiB)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the variants of a round in alternating order; peak RSS and disk writes are the
worst round. The archives above, served through the simulator's signed URL, archived by
`+"`pgoffsite backup`"+` at the default settings into one MinIO, into two MinIO servers at once (the
second with its own credentials: `+"`s3://...?endpoint=...&keys=SECOND`"+`), and each encrypted to
one age recipient (`+"`ARCHIVE_RECIPIENTS`"+`), at the default settings and, on the capped link, with
`+"`ARCHIVE_CONCURRENCY=4`"+` (80 MB/s: a run the link holds back, where what a destination and
encryption cost shows rather than the CPU two MinIO servers take from this 2-CPU machine). MB/s is the
dump's bytes over the run's wall time.

%s%s`, destsBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, b.String(), destsEnd)
	writeSection(t, root, destsBegin, destsEnd, destsHeading, section)
}

// The four-destination figures lie between these markers, in the destinations section.
const (
	fourBegin   = "<!-- four-destination figures: rewritten by TestFourDestinationsBenchmark (bin/bench) -->"
	fourEnd     = "<!-- end of the four-destination figures -->"
	fourHeading = "Four destinations of four implementations"
	// memoryLimit is ARCHIVE_MEMORY_LIMIT's default, which the runs keep; the runtime's own
	// memory (its structures, goroutine stacks, garbage between collections) may add fourSlack.
	memoryLimit = 96 << 20
	fourSlack   = 48 << 20
	// four is the variant writing to all four destinations at once.
	four = "all four: MinIO, SeaweedFS, Azure Blob, Google Cloud Storage"
)

// TestFourDestinationsBenchmark measures one backup to four destinations of four
// implementations at once — MinIO, SeaweedFS (keys=WEED), Azure Blob (Azurite) and Google Cloud
// Storage (fake-gcs-server) — against MinIO alone, at the default settings on loopback: wall time
// and peak anonymous memory (what a dyno is charged for; testenv.RunMeasured) against
// ARCHIVE_MEMORY_LIMIT.
func TestFourDestinationsBenchmark(t *testing.T) {
	root := moduleRoot(t)
	pg := testenv.StartPostgres(t)
	m, weed, az, gcs := testenv.StartMinIO(t), testenv.StartSeaweedFS(t), testenv.StartAzurite(t), testenv.StartFakeGCS(t)
	bucket, weedBucket, container, gcsBucket := m.CreateBucket(t, "four"), weed.CreateBucket(t, "four"), az.NewContainer(t), gcs.CreateBucket(t, "four")
	bin := filepath.Join(t.TempDir(), "pgoffsite")
	build(t, root, bin)
	sizes := destSizes()
	// Each destination alone, then all four at once: the slowest sets the pace of a run.
	dests := func(prefix string) []string {
		return []string{
			"s3://" + bucket + "/" + prefix,
			fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&path_style=true&keys=WEED", weedBucket, prefix, weed.Endpoint, weed.Region),
			"azblob://" + testenv.AzuriteAccount + "/" + container + "/" + prefix + "?endpoint=" + az.ServiceURL,
			"gs://" + gcsBucket + "/" + prefix + "?endpoint=http://" + gcs.Host,
		}
	}
	variants := []string{"MinIO alone", "SeaweedFS alone", "Azure Blob (Azurite) alone", "Google Cloud Storage (fake-gcs-server) alone", four}
	const rounds = 2
	load0 := loadavg()
	type run struct {
		variant, size string
		bytes         int64
		wall          time.Duration
		mem           testenv.PeakMemory
	}
	var runs []run
	for _, sz := range sizes {
		path := dump(t, pg, sz.bytes, sz.name)
		fi, _ := os.Stat(path)
		_, _, platform, data := benchSim(t, pg, path)
		for round := range rounds {
			for i := range variants {
				j := (i + round) % len(variants) // the order rotated each round
				v, urls := variants[j], dests(fmt.Sprintf("four-%d-%s-%d", j, sz.name, round))
				if v != four {
					urls = urls[j : j+1]
				}
				cmd := exec.Command(bin, "backup")
				cmd.Env = append(baseEnv(m), "HEROKU_API_KEY="+token, "BACKUP_TARGETS=bench", "BACKUP_MODE=latest", "BACKUP_MAX_AGE=8760h",
					"ARCHIVE_URL="+strings.Join(urls, " "), "HEROKU_API_URL="+platform, "HEROKU_DATA_API_URL="+data, "S3_FORCE_PATH_STYLE=true", "LOG_LEVEL=warn",
					"WEED_ACCESS_KEY_ID="+weed.AccessKey, "WEED_SECRET_ACCESS_KEY="+weed.SecretKey, "AZURE_STORAGE_KEY="+testenv.AzuriteKey)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				start := time.Now()
				mem, err := testenv.RunMeasured(cmd)
				if err != nil {
					t.Fatalf("%s, %s: %v\n%s", v, sz.name, err, tail(out.String(), 3000))
				}
				runs = append(runs, run{v, sz.name, fi.Size(), time.Since(start), mem})
			}
		}
	}

	// Per variant and size: the best wall time, the worst memory.
	type key struct{ variant, size string }
	best := map[key]run{}
	for _, r := range runs {
		k := key{r.variant, r.size}
		b, ok := best[k]
		if !ok || r.wall < b.wall {
			b.variant, b.size, b.bytes, b.wall = r.variant, r.size, r.bytes, r.wall
		}
		b.mem.Anon, b.mem.Total = max(b.mem.Anon, r.mem.Anon), max(b.mem.Total, r.mem.Total)
		best[k] = b
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "| archive | destinations | MB/s | against MinIO alone | peak anonymous memory | all resident, code included |\n|---|---|---|---|---|---|\n")
	for _, sz := range sizes {
		alone := best[key{variants[0], sz.name}]
		for _, v := range variants {
			r := best[key{v, sz.name}]
			mbps := float64(r.bytes) / r.wall.Seconds() / 1e6
			name := v
			fmt.Fprintf(&tbl, "| %s | %s | %.1f | %.2f× | %d MiB | %d MiB |\n", sz.name, name, mbps,
				alone.wall.Seconds()/r.wall.Seconds(), r.mem.Anon>>10, r.mem.Total>>10)
			if r.mem.Anon<<10 > memoryLimit+fourSlack {
				t.Errorf("%s, %s: peak anonymous memory %d MiB, over ARCHIVE_MEMORY_LIMIT (%d MiB) + %d MiB", name, sz.name, r.mem.Anon>>10, memoryLimit>>20, fourSlack>>20)
			}
		}
	}
	t.Logf("\n%s", tbl.String())
	for _, r := range runs {
		t.Logf("%-12s %-7s %6.1f s  %5d MiB anonymous  %5d MiB resident", r.variant, r.size, r.wall.Seconds(), r.mem.Anon>>10, r.mem.Total>>10)
	}
	if os.Getenv("PGOFFSITE_BENCH_WRITE") == "" {
		return
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf(`%s
Made by `+"`bin/bench`"+` on %s (%d CPUs, %s/%s, %s; load average %s at the start, %s at the end),
best of %d rounds, the order rotated each round; memory is the worst round. The archives above, served
through the simulator's signed URL on loopback, archived by `+"`pgoffsite backup`"+` at the default
settings (`+"`ARCHIVE_MEMORY_LIMIT`"+` %d MiB) into each of four destinations alone, and into all four at once:
MinIO, SeaweedFS's S3 gateway (`+"`s3://...?endpoint=...&keys=WEED`"+`), Azurite (`+"`azblob://`"+`) and
fake-gcs-server (`+"`gs://`"+`), all four servers on this machine. Peak anonymous memory (RssAnon,
sampled every 10 ms) is what a dyno is charged for; the target is `+"`ARCHIVE_MEMORY_LIMIT`"+` + %d MiB.

%s%s`, fourBegin, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host, load0, loadavg(),
		rounds, memoryLimit>>20, fourSlack>>20, tbl.String(), fourEnd)
	writeSection(t, root, fourBegin, fourEnd, fourHeading, section)
}
