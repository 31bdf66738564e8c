package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/azstore"
	"github.com/pgoffsite/pgoffsite/internal/gcsstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// clouds is a world whose archives go to four destinations of four implementations: the world's
// MinIO bucket, SeaweedFS's S3 gateway (its own keys, keys=WEED), Azure Blob Storage (Azurite,
// the account key) and Google Cloud Storage (fake-gcs-server).
type clouds struct {
	*world
	weed       *testenv.SeaweedFS
	weedURL    string // the gateway as the backup reaches it: directly, or through a proxy
	weedBucket string
	az         *testenv.Azurite
	container  string
	gcs        *testenv.FakeGCS
	gcsBucket  string
}

func newClouds(t *testing.T) *clouds {
	t.Helper()
	c := &clouds{world: newWorld(t), weed: testenv.StartSeaweedFS(t), az: testenv.StartAzurite(t), gcs: testenv.StartFakeGCS(t)}
	c.weedURL = c.weed.Endpoint
	c.weedBucket = c.weed.CreateBucket(t, "four")
	c.container = c.az.NewContainer(t)
	c.gcsBucket = c.gcs.CreateBucket(t, "four")
	return c
}

// dests are the four destinations' URLs, MinIO's first.
func (c *clouds) dests() []string {
	return []string{
		"s3://" + c.bucket + "/pgbackups",
		fmt.Sprintf("s3://%s/pgbackups?endpoint=%s&region=%s&path_style=true&keys=WEED", c.weedBucket, c.weedURL, c.weed.Region),
		"azblob://" + testenv.AzuriteAccount + "/" + c.container + "/pgbackups?endpoint=" + c.az.ServiceURL,
		"gs://" + c.gcsBucket + "/pgbackups?endpoint=http://" + c.gcs.Host,
	}
}

// env archives to the four destinations at once, with every destination's credentials.
func (c *clouds) env(targets string) map[string]string {
	env := c.world.env(targets)
	env["ARCHIVE_URL"] = strings.Join(c.dests(), " ")
	env["WEED_ACCESS_KEY_ID"] = c.weed.AccessKey
	env["WEED_SECRET_ACCESS_KEY"] = c.weed.SecretKey
	env["AZURE_STORAGE_KEY"] = testenv.AzuriteKey
	return env
}

// run runs the built binary with exactly env and checks that no destination's secret reached
// its output.
func (c *clouds) run(env map[string]string, args ...string) (int, string) {
	c.t.Helper()
	cmd := binaryCommand(c.t, env, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	code := exitCode(c.t, cmd, cmd.Run())
	c.t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, out.String())
	c.noSecrets(out.String())
	return code, out.String()
}

func (c *clouds) noSecrets(out string) {
	c.t.Helper()
	c.assertNoSecrets(out)
	if strings.Contains(out, c.weed.SecretKey) {
		c.t.Error("SeaweedFS's secret key appears in the output")
	}
	if strings.Contains(out, testenv.AzuriteKey) {
		c.t.Error("the Azure account key appears in the output")
	}
}

// exitCode is the exit status of cmd, which has run; err is what running it returned.
func exitCode(t *testing.T, cmd *exec.Cmd, err error) int {
	t.Helper()
	if cmd.ProcessState == nil {
		t.Fatalf("run pgoffsite: %v", err)
	}
	return cmd.ProcessState.ExitCode()
}

// copies reads key (under the prefix pgbackups) from each destination, in dests' order; a
// missing one is nil.
func (c *clouds) copies(key string) [][]byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	readAll := func(rc io.ReadCloser, _ int64, err error) []byte {
		if err != nil {
			return nil
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			c.t.Errorf("read %s: %v", key, err)
		}
		return b
	}
	minio := readAll(c.s3Open(ctx, c.minio.Client(c.t), c.bucket, key))
	weed := readAll(c.s3Open(ctx, c.weed.Client(c.t), c.weedBucket, key))
	az, err := azstore.Open(azstore.Options{Settings: azstore.Settings{Account: testenv.AzuriteAccount, Container: c.container, Prefix: "pgbackups",
		Endpoint: c.az.ServiceURL}, Credentials: azstore.Credentials{AccountKey: testenv.AzuriteKey}})
	if err != nil {
		c.t.Fatal(err)
	}
	gcs, err := gcsstore.Open(ctx, gcsstore.Options{Bucket: c.gcsBucket, Prefix: "pgbackups", Endpoint: "http://" + c.gcs.Host})
	if err != nil {
		c.t.Fatal(err)
	}
	defer gcs.Close()
	return [][]byte{minio, weed, readAll(az.Open(ctx, key)), readAll(gcs.Open(ctx, key))}
}

func (c *clouds) s3Open(ctx context.Context, client *s3.Client, bucket, key string) (io.ReadCloser, int64, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("pgbackups/" + key)})
	if err != nil {
		return nil, 0, err
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// One backup to MinIO, SeaweedFS, Azure Blob and Google Cloud Storage at once: four
// byte-identical copies from one download of the backup, each verified and restored on its own,
// the run's peak anonymous memory within ARCHIVE_MEMORY_LIMIT and the runtime's 48 MiB.
func TestFourDestinationsFromOneDownload(t *testing.T) {
	c := newClouds(t)
	c.sim.AddApp("shop")
	num := c.captureDirect(c.bigDatabase("shop"), "shop")
	env := c.env("shop")
	env["BACKUP_MODE"] = "latest"
	const limit = 96 << 20
	env["ARCHIVE_MEMORY_LIMIT"] = "96MiB"

	cmd := binaryCommand(t, env, "backup")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	mem, err := testenv.RunMeasured(cmd)
	t.Logf("pgoffsite backup → %v\n%s", err, out.String())
	c.noSecrets(out.String())
	if code := exitCode(t, cmd, err); code != ExitOK {
		t.Fatalf("backup: exit %d", code)
	}
	peak := mem.Anon * 1024
	t.Logf("peak anonymous memory with four destinations: %d MiB (limit %d MiB + 48 MiB); all resident, code included: %d MiB",
		peak>>20, limit>>20, mem.Total/1024)
	if peak > limit+48<<20 {
		t.Errorf("peak anonymous memory %d MiB is over ARCHIVE_MEMORY_LIMIT + 48 MiB = %d MiB", peak>>20, (limit+48<<20)>>20)
	}

	want := c.simBackup("shop", num)
	m, dump := c.manifest("shop", "DATABASE")
	c.checkArchive("shop", m, dump)
	if len(m.Copies) != 4 {
		t.Errorf("the manifest names %d copies, want 4: %+v", len(m.Copies), m.Copies)
	}
	for _, cp := range m.Copies {
		if cp.Status != "archived" {
			t.Errorf("manifest copy %+v", cp)
		}
	}
	if got := storageBytes(t, c.sim.Requests(), int64(len(want))); got != int64(len(want)) {
		t.Errorf("the job read %d bytes of the %d-byte backup from its URL: want each byte once", got, len(want))
	}
	dests := c.dests()
	for i, got := range c.copies(m.Key) {
		sum := sha256.Sum256(got)
		if !bytes.Equal(got, want) || hex.EncodeToString(sum[:]) != m.SHA256 {
			t.Errorf("%s holds %d bytes with SHA-256 %x, want the backup's %d bytes, %s", dests[i], len(got), sum, len(want), m.SHA256)
		}
	}

	// Each copy on its own: verify reads it back whole, restore loads it into a scratch database.
	for i, d := range dests {
		scheme, _, _ := strings.Cut(d, "://")
		t.Run(fmt.Sprintf("%d-%s", i+1, scheme), func(t *testing.T) {
			one := withEnv(env, "ARCHIVE_URL", d)
			if code, out := c.run(one, "verify"); code != ExitOK || !strings.Contains(out, m.Key) {
				t.Fatalf("verify at %s: exit %d", d, code)
			}
			renv := c.restoreEnv()
			for _, k := range []string{"ARCHIVE_URL", "WEED_ACCESS_KEY_ID", "WEED_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY"} {
				renv[k] = one[k]
			}
			db, dsn := c.pg.CreateDB(t, fmt.Sprintf("four_%d", i+1))
			if code, out := c.run(renv, "restore", "--from", m.Key, "--to", dsn); code != ExitOK || !strings.Contains(out, "restore finished") {
				t.Fatalf("restore from %s: exit %d", d, code)
			}
			for table, rows := range map[string]string{"orders": "100", "customers": "100", "blobs": "24000"} {
				if got, err := c.pg.Query(db, "SELECT count(*) FROM "+table); err != nil || got != rows {
					t.Errorf("restored from %s: %s has %q rows (%v), want %s", d, table, got, err, rows)
				}
			}
		})
	}
}

// One of the four destinations down (SeaweedFS behind a proxy that refuses connections): the
// other three copies complete and are whole, the run exits 1, and its summary names the one down.
func TestFourDestinationsOneDown(t *testing.T) {
	c := newClouds(t)
	proxy := testenv.StartToxiproxy(t).Proxy(t, strings.TrimPrefix(c.weed.Endpoint, "http://"))
	c.weedURL = "http://" + proxy.Listen
	proxy.SetEnabled(t, false)
	c.sim.AddApp("shop")
	c.database("shop", "DATABASE", 500)
	start := time.Now()
	code, out := c.run(c.env("shop"), "backup")
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	if took := time.Since(start); took > 3*time.Minute {
		t.Errorf("took %s", took)
	}
	down := "s3://" + c.weedBucket + "/pgbackups"
	if !strings.Contains(out, "summary: FAILED") || !strings.Contains(out, "copies_failed=") {
		t.Error("the summary does not say a copy failed")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "summary: FAILED") && !strings.Contains(line, down) {
			t.Errorf("the summary does not name %s: %s", down, line)
		}
	}

	m, dump := c.manifest("shop", "DATABASE")
	c.checkArchive("shop", m, dump)
	for _, cp := range m.Copies {
		if strings.HasPrefix(cp.Destination, down) != (cp.Status == "failed") {
			t.Errorf("manifest says %s: %s", cp.Destination, cp.Status)
		}
	}
	// Read past the proxy: the three others hold the dump whole, SeaweedFS nothing.
	dests := c.dests()
	for i, got := range c.copies(m.Key) {
		if i == 1 && got != nil {
			t.Errorf("%s, down during the backup, holds %d bytes at %s", dests[i], len(got), m.Key)
		} else if i != 1 && !bytes.Equal(got, dump) {
			t.Errorf("%s holds %d bytes, want the backup's %d", dests[i], len(got), len(dump))
		}
	}
}
