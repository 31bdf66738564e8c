package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const key = "hrku-cmd-7c0d4e1a-5b2f-4f3e-9a8b-0c1d2e3f4a5b"

var readyLine = regexp.MustCompile(`^platform=(https?://127\.0\.0\.1:\d+) data=(https?://127\.0\.0\.1:\d+) storage=(https?://127\.0\.0\.1:\d+)$`)

// start runs the command until the test ends and returns its three base URLs and its stderr.
func start(t *testing.T, args ...string) (platform, data, storage string, stderr *testenv.Output) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = &testenv.Output{}
	exited := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, stderr)
		pw.Close()
		exited <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("exit status %d after the signal, want 0", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("still serving 10 s after the signal")
		}
	})
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no ready line; stderr: %s", stderr)
	}
	m := readyLine.FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("ready line %q", sc.Text())
	}
	go io.Copy(io.Discard, pr)
	return m[1], m[2], m[3], stderr
}

func do(t *testing.T, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	return doWith(t, http.DefaultClient, method, url, auth, body)
}

// doWith is do through client c.
func doWith(t *testing.T, c *http.Client, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Accept-Inclusion", "addon:plan,config_vars")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--token", key, "--app", "shop"},
		{"--token", key, "--database-url", "postgres://x"},
		{"--token", key, "--app", "shop", "--database-url", "postgres://x", "extra"},
		{"--no-such-flag"},
		{"--token", key, "--app", "shop", "--database-url", "postgres://x", "--tls"},
		{"--token", key, "--app", "shop", "--database-url", "postgres://x", "--ca-file", "/tmp/ca.pem"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || out.Len() != 0 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing, a message", args, code, out.String(), errOut.String())
		}
	}
	var errOut bytes.Buffer
	run(context.Background(), nil, io.Discard, &errOut)
	for _, f := range []string{"--token", "--app", "--database-url"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("the usage error does not name %s: %s", f, errOut.String())
		}
	}
}

func TestServesOneAppAndLogsRequests(t *testing.T) {
	dsn := "postgres://postgres:pw@127.0.0.1:1/shop"
	platform, data, storage, stderr := start(t, "--token", key, "--app", "shop-web", "--billing-app", "shop-core",
		"--database-url", dsn)

	if code, body := do(t, "GET", platform+"/account", "wrong", nil); code != 401 || !strings.Contains(string(body), `"unauthorized"`) {
		t.Fatalf("wrong key: %d %s", code, body)
	}
	code, body := do(t, "POST", platform+"/actions/addon-attachments/resolve", key,
		map[string]string{"addon_attachment": "DATABASE_URL", "app": "shop-web"})
	var atts []struct {
		Name  string
		App   struct{ Name string }
		Addon struct {
			ID  string
			App struct{ Name string }
		}
	}
	if err := json.Unmarshal(body, &atts); code != 200 || err != nil || len(atts) != 1 ||
		atts[0].Name != "DATABASE" || atts[0].App.Name != "shop-web" || atts[0].Addon.App.Name != "shop-core" {
		t.Fatalf("resolve: %d %s", code, body)
	}
	if code, body := do(t, "GET", platform+"/apps/shop-web/config-vars", key, nil); code != 200 || !strings.Contains(string(body), `"DATABASE_URL":"`+dsn+`"`) {
		t.Fatalf("config vars: %d %s", code, body)
	}
	if code, _ := do(t, "GET", data+"/client/v11/databases/"+atts[0].Addon.ID, key, nil); code != 200 {
		t.Fatalf("database: %d", code)
	}
	if code, _ := do(t, "GET", storage+"/xfrtu/x/y.dump?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=topsecretsignature", "", nil); code != 403 {
		t.Fatalf("storage with a forged signature: %d", code)
	}

	log := stderr.String()
	for _, want := range []string{
		"herokusim: platform GET /account 401\n",
		"herokusim: platform POST /actions/addon-attachments/resolve 200\n",
		"herokusim: data GET /client/v11/databases/" + atts[0].Addon.ID + " 200\n",
		"herokusim: storage GET /xfrtu/x/y.dump 403\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "topsecret") || strings.Contains(log, "X-Amz") || strings.Contains(log, "pw@") {
		t.Errorf("a secret reached the log:\n%s", log)
	}
}

// sharedDir is $PGOFFSITE_SHARED, or "shared" beside the repository.
func sharedDir(t *testing.T) string {
	if d := os.Getenv("PGOFFSITE_SHARED"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared")
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = filepath.Dir(dir)
	}
}

// TestConformance runs the shared conformance tool against the command as the demo starts it,
// with the database billed to another app than the one it is attached to.
func TestConformance(t *testing.T) {
	tool := filepath.Join(sharedDir(t), "tools", "herokusim-conformance")
	if _, err := os.Stat(tool); err != nil {
		if testenv.InCI() {
			t.Fatalf("conformance tool missing: %v", err)
		}
		t.Skipf("conformance tool missing: %v", err)
	}
	pg := testenv.StartPostgres(t)
	name, dsn := pg.CreateDB(t, "cmdsim")
	pg.Exec(t, name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
	platform, data, _, stderr := start(t, "--token", key, "--app", "web", "--billing-app", "core",
		"--database-url", dsn, "--pg-dump", pg.Bin("pg_dump"), "--dump-dir", t.TempDir())

	out, err := exec.Command("python3", tool, "--platform", platform, "--data", data, "--token", key, "--app", "web").CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "30 passed, 0 failed") {
		t.Fatalf("conformance: %v", err)
	}
	if strings.Contains(stderr.String(), "X-Amz") {
		t.Errorf("a signed URL's query reached the log:\n%s", stderr)
	}
}

// With --tls --ca-file the command serves HTTPS with a CA it writes first; the platform origin
// answers the Data API and the storage too (logged under their own API), signed URLs are https,
// and the run-schedule knob makes a scheduled backup.
func TestTLSOrigin(t *testing.T) {
	pg := testenv.StartPostgres(t)
	name, dsn := pg.CreateDB(t, "cmdtls")
	pg.Exec(t, name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	platform, data, storage, stderr := start(t, "--token", key, "--app", "shop", "--database-url", dsn,
		"--pg-dump", pg.Bin("pg_dump"), "--dump-dir", t.TempDir(), "--tls", "--ca-file", caFile)
	for _, u := range []string{platform, data, storage} {
		if !strings.HasPrefix(u, "https://") {
			t.Fatalf("ready line URL %s is not https", u)
		}
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("the CA file was not written before the ready line: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("the CA file holds no PEM certificate: %q", pemBytes)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	if _, err := http.Get(platform + "/account"); err == nil {
		t.Fatal("a client that does not trust the CA got an answer")
	}

	code, body := doWith(t, c, "POST", platform+"/actions/addon-attachments/resolve", key,
		map[string]string{"addon_attachment": "DATABASE_URL", "app": "shop"})
	var atts []struct{ Addon struct{ ID string } }
	if err := json.Unmarshal(body, &atts); code != 200 || err != nil || len(atts) != 1 {
		t.Fatalf("resolve over TLS: %d %s", code, body)
	}
	db := platform + "/client/v11/databases/" + atts[0].Addon.ID
	if code, body := doWith(t, c, "POST", platform+"/herokusim/run-schedule", key, nil); code != 422 {
		t.Fatalf("run-schedule without a schedule: %d %s", code, body)
	}
	if code, body := doWith(t, c, "POST", db+"/transfer-schedules", key,
		map[string]string{"hour": "02", "timezone": "UTC", "schedule_name": "DATABASE_URL"}); code != 201 {
		t.Fatalf("schedule on the platform origin: %d %s", code, body)
	}
	if code, _ := doWith(t, c, "POST", platform+"/herokusim/run-schedule", "wrong", nil); code != 401 {
		t.Fatalf("run-schedule with a wrong key: %d", code)
	}
	code, body = doWith(t, c, "POST", platform+"/herokusim/run-schedule", key, nil)
	if code != 201 || string(body) != "{\"num\":1}\n" {
		t.Fatalf("run-schedule: %d %s", code, body)
	}
	var done struct {
		FinishedAt *string `json:"finished_at"`
		Succeeded  *bool
		ToName     string `json:"to_name"`
	}
	deadline := time.Now().Add(time.Minute)
	for done.FinishedAt == nil && time.Now().Before(deadline) {
		_, body := doWith(t, c, "GET", platform+"/client/v11/apps/shop/transfers/1", key, nil)
		json.Unmarshal(body, &done)
		time.Sleep(50 * time.Millisecond)
	}
	if done.Succeeded == nil || !*done.Succeeded || done.ToName != "SCHEDULED BACKUP" {
		t.Fatalf("scheduled backup: %+v", done)
	}
	_, body = doWith(t, c, "POST", platform+"/client/v11/apps/shop/transfers/1/actions/public-url", key, nil)
	var pub struct{ URL string }
	if json.Unmarshal(body, &pub); !strings.HasPrefix(pub.URL, storage+"/") {
		t.Fatalf("signed URL %q is not on the https storage origin", pub.URL)
	}
	req, _ := http.NewRequest("GET", pub.URL, nil)
	req.Header.Set("Range", "bytes=0-4")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(head) != "PGDMP" {
		t.Fatalf("download over TLS: %d %q", resp.StatusCode, head)
	}
	log := stderr.String()
	for _, want := range []string{
		"herokusim: data POST /client/v11/databases/" + atts[0].Addon.ID + "/transfer-schedules 201\n",
		"herokusim: platform POST /herokusim/run-schedule 201\n",
		"herokusim: storage GET /xfrtu/",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
