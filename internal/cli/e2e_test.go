package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testFactory is the factory of in-process runs: the memory limit stays off (many runs share
// this process, whose memory is not one run's), and tune turns the knobs a test needs.
func testFactory(stdout, stderr io.Writer, tune ...func(*Factory)) *Factory {
	f := NewFactory(stdout, stderr)
	f.LimitMemory = false
	for _, t := range tune {
		t(f)
	}
	return f
}

// testRun runs `pgoffsite args...` in-process, as Run does, with testFactory.
func testRun(ctx context.Context, args []string, stdout, stderr io.Writer, tune ...func(*Factory)) int {
	return Execute(ctx, testFactory(stdout, stderr, tune...), args)
}

// execute runs `pgoffsite args...` in-process with the knobs this world's test turned.
func (w *world) execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return testRun(ctx, args, stdout, stderr, w.tuning...)
}

// tune turns a knob of every later run of this world.
func (w *world) tune(t func(*Factory)) { w.tuning = append(w.tuning, t) }

const apiKey = "hrku-e2e-0f8c2b7d-4a51-4c1e-9d3a-5be1c0ffee42"

// world is one simulated Heroku account backed by a real Postgres, and a real MinIO bucket.
type world struct {
	t        *testing.T
	pg       *testenv.Postgres
	sim      *herokusim.Sim
	platform string
	data     string
	minio    *testenv.MinIO
	bucket   string
	dsns     []string
	// uploadsBefore are the multipart uploads open on the shared MinIO when the test began:
	// MinIO cannot say which bucket an open upload belongs to, so a test counts only its own.
	uploadsBefore map[string]bool
	// tuning turns the factory's knobs for this test's runs.
	tuning []func(*Factory)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, pg: testenv.StartPostgres(t), minio: testenv.StartMinIO(t)}
	w.sim = herokusim.New(herokusim.Options{Token: apiKey, PgDump: w.pg.Bin("pg_dump")})
	w.platform, w.data = herokusim.Serve(t, w.sim)
	w.bucket = w.minio.CreateBucket(t, "e2e")
	w.uploadsBefore = map[string]bool{}
	for _, id := range w.minio.IncompleteUploads(t, w.bucket) {
		w.uploadsBefore[id] = true
	}
	return w
}

// database makes a real database with some rows and attaches it to app (billed to billingApp).
func (w *world) database(billingApp, attachment string, rows int) (addonID, dbName string) {
	name, dsn := w.pg.CreateDB(w.t, "shop")
	w.pg.Exec(w.t, name, fmt.Sprintf(`
		CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
		CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, note text);
		INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 100) g;
		INSERT INTO orders (customer_id, note) SELECT 1 + g %% 100, md5(g::text) FROM generate_series(1, %d) g;`, rows))
	w.dsns = append(w.dsns, dsn)
	return w.sim.AddDatabase(billingApp, attachment, "heroku-postgresql:standard-0", dsn), name
}

// env is a complete, valid configuration; tests override pieces of it.
func (w *world) env(targets string) map[string]string {
	return map[string]string{
		"HEROKU_API_KEY":        apiKey,
		"BACKUP_TARGETS":        targets,
		"ARCHIVE_URL":           "s3://" + w.bucket + "/pgbackups",
		"HEROKU_API_URL":        w.platform,
		"HEROKU_DATA_API_URL":   w.data,
		"AWS_REGION":            w.minio.Region,
		"AWS_ACCESS_KEY_ID":     w.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY": w.minio.SecretKey,
		"AWS_ENDPOINT_URL_S3":   w.minio.Endpoint,
		"S3_FORCE_PATH_STYLE":   "true",
		"LOG_FORMAT":            "logfmt",
	}
}

// run runs `pgoffsite args...` in-process with exactly env set, and checks that no secret reached
// the output.
func (w *world) run(env map[string]string, args ...string) (int, string) {
	w.t.Helper()
	for _, k := range configVars {
		w.t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		w.t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := w.execute(context.Background(), args, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	w.t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, out)
	w.assertNoSecrets(out)
	return code, out
}

// configVars are cleared before each run so the machine's own environment cannot leak in: every
// variable pgoffsite reads.
var configVars = func() []string {
	var names []string
	for _, d := range config.Describe() {
		names = append(names, d.Name)
	}
	return append(names, "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
}()

var signedQuery = regexp.MustCompile(`X-Amz-(Signature|Credential)=`)

// databaseURL is a database URL with its user (every test database's has one), not a
// placeholder such as postgres://HOST:5432/DATABASE in a usage message.
var databaseURL = regexp.MustCompile(`postgres(ql)?://[^\s"]*@`)

func (w *world) assertNoSecrets(out string) {
	w.t.Helper()
	leaks := map[string]bool{
		"the Heroku API key":        strings.Contains(out, apiKey),
		"the AWS secret key":        w.minio.SecretKey != "" && strings.Contains(out, w.minio.SecretKey),
		"a signed URL's query":      signedQuery.MatchString(out),
		"a database URL":            databaseURL.MatchString(out),
		"the signed URL's path key": strings.Contains(out, ".dump?"),
	}
	for what, leaked := range leaks {
		if leaked {
			w.t.Errorf("%s appears in the output", what)
		}
	}
}

func (w *world) s3() *s3.Client { return w.minio.Client(w.t) }

func (w *world) object(key string) []byte {
	w.t.Helper()
	out, err := w.s3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)})
	if err != nil {
		w.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) keys() []string {
	w.t.Helper()
	out, err := w.s3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket)})
	if err != nil {
		w.t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// manifest reads the manifest of the only archive of app/database in the bucket.
func (w *world) manifest(app, database string) (catalog.Manifest, []byte) {
	w.t.Helper()
	var found []string
	for _, k := range w.keys() {
		if strings.HasPrefix(k, "pgbackups/"+app+"/"+database+"/") && strings.HasSuffix(k, ".json") {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		w.t.Fatalf("manifests for %s/%s: %v (all keys: %v)", app, database, found, w.keys())
	}
	var m catalog.Manifest
	if err := json.Unmarshal(w.object(found[0]), &m); err != nil {
		w.t.Fatal(err)
	}
	return m, w.object("pgbackups/" + m.Key)
}

// checkArchive asserts the archived dump is byte-identical to the simulator's, matches its
// manifest, and that pg_restore reads it.
func (w *world) checkArchive(billingApp string, m catalog.Manifest, dump []byte) {
	w.t.Helper()
	num := 0
	fmt.Sscanf(m.Backup[1:], "%d", &num)
	path, ok := w.sim.Backup(billingApp, num)
	if !ok {
		w.t.Fatalf("simulator has no backup %s of %s", m.Backup, billingApp)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	if !bytes.Equal(dump, want) {
		w.t.Fatalf("archive (%d bytes) differs from Heroku's backup (%d bytes)", len(dump), len(want))
	}
	sum := sha256.Sum256(dump)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(dump)) {
		w.t.Errorf("manifest sha256/bytes %s/%d, archive %x/%d", m.SHA256, m.Bytes, sum, len(dump))
	}
	if m.PgDump.ServerVersion == "" || m.PgDump.DumpVersion == "" || m.TransferUUID == "" || m.BackupFinishedAt.IsZero() || m.PgoffsiteVersion == "" {
		w.t.Errorf("manifest lacks facts: %+v", m)
	}
	f := filepath.Join(w.t.TempDir(), "archive.dump")
	os.WriteFile(f, dump, 0o600)
	out, err := exec.Command(w.pg.Bin("pg_restore"), "--list", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TABLE DATA public orders") {
		w.t.Errorf("pg_restore --list: %v\n%s", err, out)
	}
}

func TestBackupCaptureMode(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 5000)
	code, out := w.run(w.env("shop"), "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)
	for _, want := range []string{"capture started", "capture finished", "upload finished", "summary: archived", "app=shop", "database=DATABASE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if len(w.openUploads()) != 0 {
		t.Error("incomplete multipart uploads left behind")
	}
}

func TestBackupLatestMode(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	addon, _ := w.database("shop", "DATABASE", 2000)
	// A backup Heroku already has, made through the Data API as a schedule would.
	num := w.captureDirect(addon, "shop")
	env := w.env("shop:DATABASE")
	env["BACKUP_MODE"] = "latest"
	code, _ := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	if m.Backup != fmt.Sprintf("b%03d", num) {
		t.Errorf("archived %s, want the existing b%03d", m.Backup, num)
	}
	w.checkArchive("shop", m, dump)

	// The same backup again: no second object, exit 0.
	before := len(w.keys())
	code, out := w.run(env, "backup")
	if code != ExitOK || len(w.keys()) != before || !strings.Contains(out, "already archived") {
		t.Errorf("second run: exit %d, %d keys (was %d)", code, len(w.keys()), before)
	}
}

// captureDirect asks the simulated Data API for a backup and waits for it, as Heroku's own
// schedule would have made one.
func (w *world) captureDirect(addonID, billingApp string) int {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.data+"/client/v11/databases/"+addonID+"/backups", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		w.t.Fatalf("capture: %v %v", err, resp)
	}
	var tr struct{ Num int }
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	for range 300 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/client/v11/apps/%s/transfers/%d", w.data, billingApp, tr.Num), nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.t.Fatal(err)
		}
		var st struct {
			FinishedAt *string `json:"finished_at"`
			Succeeded  *bool   `json:"succeeded"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.FinishedAt != nil {
			if st.Succeeded == nil || !*st.Succeeded {
				w.t.Fatal("direct capture failed")
			}
			return tr.Num
		}
		sleepBriefly()
	}
	w.t.Fatal("direct capture did not finish")
	return 0
}

func TestBackupOneTargetFails(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 1000)
	code, out := w.run(w.env("shop:HEROKU_POSTGRESQL_NOPE shop"), "backup")
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)
	failLine := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "summary: FAILED") {
			failLine = l
		}
	}
	if !strings.Contains(failLine, "HEROKU_POSTGRESQL_NOPE") || !strings.Contains(failLine, "Unknown database") {
		t.Errorf("the summary does not name the failed target and its cause: %q", failLine)
	}
}

func TestBackupDatabaseBilledToAnotherApp(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop-core")
	w.sim.AddApp("shop-web")
	addon, _ := w.database("shop-core", "DATABASE", 1000)
	w.sim.Attach(addon, "shop-web", "SHARED_DB", nil)
	code, _ := w.run(w.env("shop-web:SHARED_DB"), "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, dump := w.manifest("shop-web", "SHARED_DB")
	if m.BillingApp != "shop-core" {
		t.Errorf("billing app %q", m.BillingApp)
	}
	w.checkArchive("shop-core", m, dump)
}

func TestBackupRefusesErrorPage(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 100)
	w.sim.Faults().SetStorageErrorPage(true)
	code, out := w.run(w.env("shop"), "backup")
	if code != ExitFailed || !strings.Contains(out, "not a pg_dump custom-format archive") {
		t.Fatalf("exit %d; want a refusal naming the format", code)
	}
	if keys := w.keys(); len(keys) != 0 {
		t.Errorf("objects were written: %v", keys)
	}
	if len(w.openUploads()) != 0 {
		t.Error("incomplete multipart uploads left behind")
	}
}

func TestBackupConfigMistakes(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	tests := []struct {
		name  string
		env   func(map[string]string)
		names string // the variable the message must name
	}{
		{"no API key", func(e map[string]string) { delete(e, "HEROKU_API_KEY") }, "HEROKU_API_KEY"},
		{"no targets", func(e map[string]string) { delete(e, "BACKUP_TARGETS") }, "BACKUP_TARGETS"},
		{"bad app name", func(e map[string]string) { e["BACKUP_TARGETS"] = "Shop_Prod" }, "BACKUP_TARGETS"},
		{"empty database", func(e map[string]string) { e["BACKUP_TARGETS"] = "shop:" }, "BACKUP_TARGETS"},
		{"duplicate target", func(e map[string]string) { e["BACKUP_TARGETS"] = "shop shop:DATABASE_URL" }, "BACKUP_TARGETS"},
		{"no archive", func(e map[string]string) { delete(e, "ARCHIVE_URL") }, "ARCHIVE_URL"},
		{"ftp archive", func(e map[string]string) { e["ARCHIVE_URL"] = "ftp://host/x" }, "ARCHIVE_URL"},
		{"relative file", func(e map[string]string) { e["ARCHIVE_URL"] = "file://relative/dir" }, "ARCHIVE_URL"},
		{"bad bucket", func(e map[string]string) { e["ARCHIVE_URL"] = "s3://Bad_Bucket/x" }, "ARCHIVE_URL"},
		{"dot segment in prefix", func(e map[string]string) { e["ARCHIVE_URL"] = "s3://archive/../x" }, "ARCHIVE_URL"},
		{"root directory", func(e map[string]string) { e["ARCHIVE_URL"] = "file:///" }, "ARCHIVE_URL"},
		{"bad mode", func(e map[string]string) { e["BACKUP_MODE"] = "snapshot" }, "BACKUP_MODE"},
		{"bad max age", func(e map[string]string) { e["BACKUP_MAX_AGE"] = "1 day" }, "BACKUP_MAX_AGE"},
		{"no region", func(e map[string]string) { delete(e, "AWS_REGION") }, "AWS_REGION"},
		{"half key pair", func(e map[string]string) { delete(e, "AWS_SECRET_ACCESS_KEY") }, "AWS_SECRET_ACCESS_KEY"},
		{"bad storage class", func(e map[string]string) { e["S3_STORAGE_CLASS"] = "COLD" }, "S3_STORAGE_CLASS"},
		{"bad sse", func(e map[string]string) { e["S3_SSE"] = "aes" }, "S3_SSE"},
		{"kms key without kms", func(e map[string]string) { e["S3_SSE_KMS_KEY_ID"] = "k1" }, "S3_SSE_KMS_KEY_ID"},
		{"http heroku elsewhere", func(e map[string]string) { e["HEROKU_API_URL"] = "http://api.heroku.com" }, "HEROKU_API_URL"},
		{"bad path style", func(e map[string]string) { e["S3_FORCE_PATH_STYLE"] = "yes please" }, "S3_FORCE_PATH_STYLE"},
		{"bad log level", func(e map[string]string) { e["LOG_LEVEL"] = "loud" }, "LOG_LEVEL"},
		{"bad log format", func(e map[string]string) { e["LOG_FORMAT"] = "xml" }, "LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(w.sim.Requests())
			env := w.env("shop")
			tt.env(env)
			code, out := w.run(env, "backup")
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(out, tt.names+":") {
				t.Errorf("the message does not name %s", tt.names)
			}
			if n := len(w.sim.Requests()) - before; n != 0 {
				t.Errorf("%d requests reached Heroku", n)
			}
		})
	}
	// Several mistakes at once: all listed.
	env := w.env("Shop")
	env["BACKUP_MODE"] = "x"
	delete(env, "HEROKU_API_KEY")
	code, out := w.run(env, "backup")
	for _, v := range []string{"HEROKU_API_KEY:", "BACKUP_TARGETS:", "BACKUP_MODE:"} {
		if code != ExitUsage || !strings.Contains(out, v) {
			t.Errorf("exit %d; %s not listed", code, v)
		}
	}
	if len(w.keys()) != 0 {
		t.Error("objects were written")
	}
}

// sleepBriefly is the interval of a bounded polling loop.
func sleepBriefly() { time.Sleep(200 * time.Millisecond) }

// openUploads returns the multipart uploads opened since the test began and still open.
func (w *world) openUploads() []string {
	w.t.Helper()
	var open []string
	for _, id := range w.minio.IncompleteUploads(w.t, w.bucket) {
		if !w.uploadsBefore[id] {
			open = append(open, id)
		}
	}
	return open
}
