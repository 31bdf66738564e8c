package cli

// The fault-injection suite: every fault a nightly job meets, injected for real (simulator fault
// knobs, Toxiproxy between the job and its peers, real MinIO and PostgreSQL), and what must
// happen. Bad input from the outside world covered here:
//   - the download connection cut at random offsets (20 trials)
//   - a signed URL that expires mid-download
//   - 429 with Retry-After and 503 from the Platform and Data APIs
//   - MinIO unreachable for seconds mid-upload
//   - SIGTERM mid-upload
//   - a body shorter than its Content-Length (truncated download)
//   - a non-dump body (an error page) — TestBackupRefusesErrorPage in e2e_test.go
//   - malformed JSON from Heroku
//   - an unknown app, an unknown database (TestBackupOneTargetFails), an ambiguous database
//   - a revoked API key
//   - a capture Heroku reports as failed, and one that never finishes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// bigDatabase makes a database whose dump (about 24 MB) spans several download ranges and upload parts.
// bigBackupBehindProxy gives the app shop a big database and a captured backup of it, and puts
// MinIO behind a Toxiproxy proxy that carries rate KB/s upstream: an upload that takes seconds,
// long enough to be interrupted or stalled. It returns the proxy and the backup's number.
func (w *world) bigBackupBehindProxy(rate int) (*testenv.Proxy, int) {
	w.t.Helper()
	w.sim.AddApp("shop")
	num := w.captureDirect(w.bigDatabase("shop"), "shop")
	proxy := testenv.StartToxiproxy(w.t).Proxy(w.t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(w.t, "bandwidth", "upstream", map[string]any{"rate": rate})
	return proxy, num
}

func (w *world) bigDatabase(app string) string {
	addon, name := w.database(app, "DATABASE", 100)
	w.pg.Exec(w.t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 24000) g;`)
	return addon
}

// smallParts makes the job write 5 MiB parts and keep at most two ranges in flight, so a 24 MB
// dump takes several of each and a fault meets ranges in every state.
func smallParts(env map[string]string) map[string]string {
	env["ARCHIVE_PART_SIZE"] = "5MiB"
	env["ARCHIVE_CONCURRENCY"] = "2"
	return env
}

func TestFaultDownloadCutAtRandomOffsets(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon := w.bigDatabase("shop")
	num := w.captureDirect(addon, "shop")
	want := w.simBackup("shop", num)
	rnd := rand.New(rand.NewPCG(42, uint64(len(want))))
	for trial := range 20 {
		w.sim.Faults().CutStorage(int64(rnd.IntN(5<<20)), 1+rnd.IntN(3))
		env := smallParts(w.env("shop"))
		env["BACKUP_MODE"] = "latest"
		env["ARCHIVE_URL"] = fmt.Sprintf("s3://%s/trial-%02d", w.bucket, trial)
		code, _ := w.run(env, "backup")
		if code != ExitOK {
			t.Fatalf("trial %d: exit %d", trial, code)
		}
		got := w.objectUnder(fmt.Sprintf("trial-%02d/", trial), ".dump")
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: archive (%d bytes) differs from Heroku's backup (%d bytes)", trial, len(got), len(want))
		}
	}
}

func TestFaultURLExpiresMidDownload(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon := w.bigDatabase("shop")
	num := w.captureDirect(addon, "shop")
	// Slow the download (Toxiproxy) and make URLs live two seconds: later ranges meet an expired URL.
	x := testenv.StartToxiproxy(t)
	storage := httptest.NewServer(w.sim.Storage())
	defer storage.Close()
	proxy := x.Proxy(t, strings.TrimPrefix(storage.URL, "http://"))
	proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 3000})
	w.sim.SetStorageURL("http://" + proxy.Listen)
	w.sim.Faults().SetURLTTL(2 * time.Second)
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "renewing the backup's download URL") {
		t.Error("the URL was never renewed: the test did not exercise expiry")
	}
	m, dump := w.manifest("shop", "DATABASE")
	if m.Backup != fmt.Sprintf("b%03d", num) || !bytes.Equal(dump, w.simBackup("shop", num)) {
		t.Fatal("archive differs from Heroku's backup")
	}
}

// S3 answering 503 SlowDown past three downloads at once, at the default ARCHIVE_CONCURRENCY
// (16): the download grows past three, is refused, settles at three or fewer and completes.
func TestFaultStorageSlowDownSettlesTheConnections(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon := w.bigDatabase("shop")
	num := w.captureDirect(addon, "shop")
	// 2 MB/s per request, paced where S3 paces it.
	storage := httptest.NewServer(testenv.PacedHandler(w.sim.Storage(), 2e6))
	defer storage.Close()
	w.sim.SetStorageURL(storage.URL)
	w.sim.Faults().LimitStorage(3)
	env := w.env("shop")
	env["BACKUP_MODE"] = "latest"
	env["LOG_FORMAT"] = "json"
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if w.sim.Faults().StorageRefused() == 0 {
		t.Fatal("no download was refused: the test did not exercise SlowDown")
	}
	var chosen []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "download connections chosen" {
			chosen = append(chosen, m)
		}
	}
	if len(chosen) == 0 {
		t.Fatal("no line says how many connections the download chose")
	}
	last := chosen[len(chosen)-1]
	if n, _ := last["connections"].(float64); n < 1 || n > 3 || last["max_connections"] != float64(16) {
		t.Fatalf("settled at %v of %v; want 1 to 3 of 16", last["connections"], last["max_connections"])
	}
	if why, _ := last["why"].(string); !strings.Contains(why, "503 Service Unavailable (SlowDown") {
		t.Fatalf("why %q; want the SlowDown named", why)
	}
	m, dump := w.manifest("shop", "DATABASE")
	if m.Backup != fmt.Sprintf("b%03d", num) || !bytes.Equal(dump, w.simBackup("shop", num)) {
		t.Fatal("archive differs from Heroku's backup")
	}
}

func TestFaultHerokuThrottlesAndFails(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 500)
	w.sim.Faults().FailNext("platform", http.StatusTooManyRequests, 1, 2*time.Second)
	w.sim.Faults().FailNext("data", http.StatusServiceUnavailable, 2, 0)
	start := time.Now()
	code, _ := w.run(w.env("shop"), "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if time.Since(start) < 2*time.Second {
		t.Errorf("finished in %s: Retry-After: 2 was not honoured", time.Since(start))
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)
}

func TestFaultMinIOUnreachableMidUpload(t *testing.T) {
	w := newWorld(t)
	proxy, num := w.bigBackupBehindProxy(4000)
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	go func() {
		if !w.waitUploadUnderWay(60 * time.Second) {
			t.Error("no multipart upload was opened within 60 s")
		}
		proxy.SetEnabled(t, false)
		time.Sleep(3 * time.Second) // the outage itself: MinIO unreachable for 3 s
		proxy.SetEnabled(t, true)
	}()
	code, _ := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	_, dump := w.manifest("shop", "DATABASE")
	if !bytes.Equal(dump, w.simBackup("shop", num)) {
		t.Fatal("archive differs from Heroku's backup")
	}
	if n := len(w.openUploads()); n != 0 {
		t.Errorf("%d incomplete uploads left", n)
	}
}

// waitUploadUnderWay polls MinIO until a multipart upload of the test is open and holds a part
// (the job is uploading parts: it has the upload's ID, so an interruption now is one it can
// clean up), and reports false after timeout. An open upload alone is not enough: its
// CreateMultipartUpload answer may still be on the way, and a connection cut then leaves an
// upload the client never heard of, which only the bucket's lifecycle rule removes.
func (w *world) waitUploadUnderWay(timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if len(w.openUploads()) > 0 && w.minio.StoredParts(w.t) > 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	return false
}

// waitFor returns true once the output holds substr, false when timeout passes first.
// pgoffsiteBinary builds the command once per test binary.
var builtBinary string

func pgoffsiteBinary(t *testing.T) string {
	if builtBinary != "" {
		return builtBinary
	}
	dir, _ := os.MkdirTemp("", "pgoffsite-bin-")
	bin := filepath.Join(dir, "pgoffsite")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/pgoffsite").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	builtBinary = bin
	return bin
}

// binaryCommand runs the built pgoffsite with exactly env (and PATH and HOME).
func binaryCommand(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(pgoffsiteBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// startBinary starts the built pgoffsite with exactly env; its output is read while it runs.
func startBinary(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, *testenv.Output) {
	cmd := binaryCommand(t, env, args...)
	// exec.Cmd copies the output in its own goroutine while the test reads it: a locked buffer.
	out := &testenv.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func TestFaultSIGTERMMidUpload(t *testing.T) {
	w := newWorld(t)
	proxy, _ := w.bigBackupBehindProxy(2000) // ~12 s for the dump
	monitor, env := w.withMonitor(smallParts(w.env("shop")), "failure")
	env["BACKUP_MODE"] = "latest"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	cmd, out := startBinary(t, env, "backup")
	// Wait until the upload is under way, then stop the "dyno".
	if !out.WaitFor("download started", 60*time.Second) {
		t.Error("the download did not start within 60 s")
	}
	if !w.waitUploadUnderWay(60 * time.Second) {
		t.Error("no multipart upload was opened within 60 s")
	}
	w.terminate(cmd, out)
	if keys := w.keys(); len(keys) != 0 {
		t.Errorf("objects left: %v", keys)
	}
	if n := len(w.openUploads()); n != 0 {
		t.Errorf("%d incomplete multipart uploads left", n)
	}
	if !strings.Contains(out.String(), "backup run interrupted") || !strings.Contains(out.String(), "summary: FAILED") {
		t.Error("the interruption was not reported")
	}
	// The monitor hears of it: a /fail ping and the webhook, both naming the interruption.
	if got := monitor.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key/fail,POST /hook" {
		t.Errorf("monitor saw %s", got)
	}
	if bodies := monitor.Bodies(); !strings.Contains(bodies["/ping/9f1c-check-key/fail"], "interrupted") || !strings.Contains(bodies["/hook"], `"status":"interrupted"`) {
		t.Errorf("notifications lack the interruption: %v", bodies)
	}
}

func TestFaultBadInputs(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 200)
	w.sim.AddApp("shop-two")
	w.database("shop-two", "HEROKU_POSTGRESQL_PINK", 10)
	w.database("shop-two", "HEROKU_POSTGRESQL_BLUE", 10)
	tests := []struct {
		name   string
		setup  func() func()
		env    func(map[string]string)
		expect string
	}{
		{"truncated download", func() func() {
			w.sim.Faults().SetWrongContentLength(true)
			return func() { w.sim.Faults().SetWrongContentLength(false) }
		}, nil, "unexpected EOF"},
		{"unknown app", nil, func(e map[string]string) { e["BACKUP_TARGETS"] = "no-such-app" }, "Couldn't find that app"},
		{"ambiguous database", nil, func(e map[string]string) { e["BACKUP_TARGETS"] = "shop-two:heroku-postgresql" }, "ambiguous"},
		{"revoked key", nil, func(e map[string]string) { e["HEROKU_API_KEY"] = "hrku-revoked-000000000000" }, "HEROKU_API_KEY) is invalid or expired"},
		{"failed capture", func() func() {
			w.sim.Faults().FailCaptures(1, "pg_dump: error: connection to server lost")
			return func() {}
		}, nil, "pg_dump: error: connection to server lost"},
		{"capture never finishes", func() func() {
			w.sim.Faults().SlowCaptures(time.Hour)
			return func() { w.sim.Faults().SlowCaptures(0) }
		}, func(e map[string]string) { e["BACKUP_CAPTURE_TIMEOUT"] = "3s" }, "cancelled on Heroku"},
		{"malformed JSON from Heroku", w.shortHerokuRetries, func(e map[string]string) { e["HEROKU_DATA_API_URL"] = w.malformedData() }, "JSON cut short or malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				defer tt.setup()()
			}
			env := w.env("shop")
			env["ARCHIVE_URL"] = "s3://" + w.bucket + "/" + strings.ReplaceAll(tt.name, " ", "-")
			if tt.env != nil {
				tt.env(env)
			}
			code, out := w.run(env, "backup")
			if code != ExitFailed || !strings.Contains(out, tt.expect) {
				t.Errorf("exit %d; output lacks %q", code, tt.expect)
			}
			for _, k := range w.keys() {
				if strings.HasPrefix(k, strings.ReplaceAll(tt.name, " ", "-")+"/") {
					t.Errorf("object written: %s", k)
				}
			}
			if n := len(w.openUploads()); n != 0 {
				t.Errorf("%d incomplete uploads left", n)
			}
		})
	}
}

// malformedData is a Data API that answers the transfer list with broken JSON and passes
// everything else to the simulator.
func (w *world) malformedData() string {
	h := w.sim.Data()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/transfers") && r.Method == http.MethodGet {
			rw.Header().Set("Content-Type", "application/json")
			rw.Write([]byte(`[{"uuid": "x", "num": `))
			return
		}
		h.ServeHTTP(rw, r)
	}))
	w.t.Cleanup(srv.Close)
	return srv.URL
}

func (w *world) simBackup(app string, num int) []byte {
	w.t.Helper()
	path, ok := w.sim.Backup(app, num)
	if !ok {
		w.t.Fatalf("no backup %d of %s in the simulator", num, app)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) objectUnder(prefix, suffix string) []byte {
	w.t.Helper()
	for _, k := range w.keys() {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			return w.object(k)
		}
	}
	w.t.Fatalf("no object under %s*%s in %v", prefix, suffix, w.keys())
	return nil
}

// Scheduler can start the job twice: two runs at once on the same Heroku backup leave one
// archive, byte-identical, and both succeed.
func TestFaultTwoRunsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon := w.bigDatabase("shop")
	num := w.captureDirect(addon, "shop")
	env := smallParts(w.env("shop"))
	env["BACKUP_MODE"] = "latest"
	type run struct {
		code int
		out  bytes.Buffer
	}
	runs := make([]*run, 2)
	done := make(chan struct{})
	for i := range runs {
		runs[i] = &run{}
		cmd := binaryCommand(t, env, "backup")
		cmd.Stdout, cmd.Stderr = &runs[i].out, &runs[i].out
		go func(r *run) {
			cmd.Run()
			r.code = cmd.ProcessState.ExitCode()
			done <- struct{}{}
		}(runs[i])
	}
	<-done
	<-done
	for i, r := range runs {
		t.Logf("run %d → exit %d\n%s", i, r.code, r.out.String())
		w.assertNoSecrets(r.out.String())
		if r.code != ExitOK {
			t.Errorf("run %d: exit %d", i, r.code)
		}
	}
	var dumps, manifests int
	for _, k := range w.keys() {
		switch {
		case strings.HasSuffix(k, ".dump"):
			dumps++
		case strings.HasSuffix(k, ".json"):
			manifests++
		}
	}
	if dumps != 1 || manifests != 1 {
		t.Fatalf("%d dumps and %d manifests, want one of each: %v", dumps, manifests, w.keys())
	}
	_, dump := w.manifest("shop", "DATABASE")
	if !bytes.Equal(dump, w.simBackup("shop", num)) {
		t.Fatal("archive differs from Heroku's backup")
	}
	if n := len(w.openUploads()); n != 0 {
		t.Errorf("%d incomplete uploads left", n)
	}
}
