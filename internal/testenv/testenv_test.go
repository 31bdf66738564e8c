package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgres(t *testing.T) {
	p := StartPostgres(t)
	if p2 := StartPostgres(t); p2 != p {
		t.Error("a second StartPostgres started another server")
	}
	name, dsn := p.CreateDB(t, "Probe-DB")
	other, _ := p.CreateDB(t, "Probe-DB")
	if name == other {
		t.Errorf("CreateDB gave %q twice", name)
	}
	p.Exec(t, name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 42);")
	if out, err := p.Query(name, "SELECT count(*) FROM t"); err != nil || out != "42" {
		t.Fatalf("count = %q, %v", out, err)
	}
	if out, err := p.Query(other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); err != nil || out != "0" {
		t.Errorf("a fresh database has %q tables, %v", out, err)
	}
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name); dsn != want || p.DSN(name) != want {
		t.Errorf("dsn %q, want %q", dsn, want)
	}
	// ON_ERROR_STOP: a failing statement is an error even when later ones succeed.
	if _, err := p.Query(name, "SELECT * FROM nope; SELECT 1;"); err == nil {
		t.Error("a failing statement was not reported")
	}
	for _, prog := range []string{"pg_dump", "pg_restore", "psql"} {
		if _, err := os.Stat(p.Bin(prog)); err != nil {
			t.Errorf("Bin(%q): %v", prog, err)
		}
	}
}

func TestMinIO(t *testing.T) {
	m := StartMinIO(t)
	c := m.Client(t)
	b := m.CreateBucket(t, "probe")
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
}

// Default bucket encryption needs the KMS key MinIO is started with.
func TestMinIOBucketEncryption(t *testing.T) {
	m := StartMinIO(t)
	c := m.Client(t)
	b := m.CreateBucket(t, "enc")
	ctx := context.Background()
	if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(b),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("secret")}); err != nil {
		t.Fatal(err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("object stored with encryption %q", h.ServerSideEncryption)
	}
}

// The open-upload check must see an open upload, by its upload ID, and stop seeing it once the
// upload is aborted or completed.
func TestMinIOIncompleteUploads(t *testing.T) {
	m := StartMinIO(t)
	c := m.Client(t)
	b := m.CreateBucket(t, "uploads")
	ctx := context.Background()
	if open := m.IncompleteUploads(t, b); len(open) != 0 {
		t.Fatalf("open uploads before any: %v", open)
	}
	open := func(key string) string {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(up.UploadId)
	}
	aborted, completed := "dir/aborted.dump", "dir/completed.dump"
	a, z := open(aborted), open(completed)
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String(completed), UploadId: aws.String(z),
		PartNumber: aws.Int32(1), Body: strings.NewReader("last and only part")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a, z}
	slices.Sort(want)
	if got := m.IncompleteUploads(t, b); !slices.Equal(got, want) {
		t.Fatalf("open uploads %v, want %v", got, want)
	}
	if got := m.IncompleteUploadsOf(t, b, aborted); !slices.Equal(got, []string{a}) {
		t.Fatalf("open uploads of %s: %v, want [%s]", aborted, got, a)
	}
	if got := m.IncompleteUploadsOf(t, b, "dir"); len(got) != 0 {
		t.Fatalf("open uploads of a key never uploaded: %v", got)
	}

	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(aborted), UploadId: aws.String(a)}); err != nil {
		t.Fatal(err)
	}
	if got := m.IncompleteUploads(t, b); !slices.Equal(got, []string{z}) {
		t.Fatalf("after abort: open uploads %v, want [%s]", got, z)
	}
	if got := m.IncompleteUploadsOf(t, b, aborted); len(got) != 0 {
		t.Fatalf("aborted upload still open: %v", got)
	}

	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(completed), UploadId: aws.String(z),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got := m.IncompleteUploads(t, b); len(got) != 0 {
		t.Fatalf("after complete: open uploads %v", got)
	}
}

func TestToxiproxy(t *testing.T) {
	x := StartToxiproxy(t)
	body := bytes.Repeat([]byte("x"), 100<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	p := x.Proxy(t, strings.TrimPrefix(srv.URL, "http://"))
	get := func() ([]byte, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + p.Listen)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	if got, err := get(); err != nil || len(got) != len(body) {
		t.Fatalf("through the proxy: %d bytes, %v", len(got), err)
	}
	toxic := p.AddToxic(t, "limit_data", "downstream", map[string]any{"bytes": 10000})
	if got, err := get(); err == nil && len(got) == len(body) {
		t.Fatal("limit_data did not cut the connection")
	}
	p.RemoveToxic(t, toxic)
	if got, err := get(); err != nil || len(got) != len(body) {
		t.Fatalf("after removing the toxic: %d bytes, %v", len(got), err)
	}
	p.SetEnabled(t, false)
	if _, err := get(); err == nil {
		t.Fatal("a disabled proxy still answered")
	}
	p.SetEnabled(t, true)
	if got, err := get(); err != nil || len(got) != len(body) {
		t.Fatalf("after re-enabling: %d bytes, %v", len(got), err)
	}
}

// recorder is a testing.TB that records Skipf and Fatalf; like the real ones they end the
// goroutine, so run it with recorder.run.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// A missing server binary skips a test on a developer machine and fails it in CI, saying how to
// get it.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PGOFFSITE_MINIO_BIN", filepath.Join(t.TempDir(), "no-minio"))
	t.Setenv("PGOFFSITE_TOXIPROXY_BIN", filepath.Join(t.TempDir(), "no-toxiproxy"))
	t.Setenv("PGOFFSITE_HEROKU_CLI", filepath.Join(t.TempDir(), "no-heroku"))
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		for what, start := range map[string]func(testing.TB){
			"github.com/minio/minio@":                    func(r testing.TB) { MinIOBinary(r) },
			"github.com/Shopify/toxiproxy/v2/cmd/server": func(r testing.TB) { StartToxiproxy(r) },
			"heroku@" + HerokuCLIVersion:                 func(r testing.TB) { HerokuCLI(r) },
		} {
			r := &recorder{TB: t}
			r.run(start)
			got, other := r.skipped, r.failed
			if ci == "true" {
				got, other = r.failed, r.skipped
			}
			if !strings.Contains(got, what) || !strings.Contains(got, "bin/test") || other != "" {
				t.Errorf("CI=%q, %s missing: skipped %q, failed %q", ci, what, r.skipped, r.failed)
			}
		}
	}
}

// A test binary that dies without reaching the end of Main (a panic, a test timeout, a signal)
// still stops its servers and removes their data.
func TestServersDieWithTheirTestBinary(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		p, m, x := StartPostgres(t), StartMinIO(t), StartToxiproxy(t)
		fmt.Printf("SERVERS %s:%d %s %s %s %s\n", p.Host, p.Port, p.dir, strings.TrimPrefix(m.Endpoint, "http://"),
			filepath.Dir(m.DataDir), strings.TrimPrefix(x.API, "http://"))
		os.Exit(3)
	}
	StartPostgres(t)
	StartMinIO(t)
	StartToxiproxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServersDieWithTheirTestBinary$")
	cmd.Env = append(os.Environ(), "TESTENV_CHILD=1")
	cmd.WaitDelay = 5 * time.Second // fails the test if a server kept the output pipe open
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	var pgAddr, pgDir, minioAddr, minioDir, toxiAddr string
	if _, err := fmt.Sscanf(string(out[bytes.Index(out, []byte("SERVERS")):]), "SERVERS %s %s %s %s %s",
		&pgAddr, &pgDir, &minioAddr, &minioDir, &toxiAddr); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	gone := func() string {
		for _, addr := range []string{pgAddr, minioAddr, toxiAddr} {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return addr + " still accepts connections"
			}
		}
		for _, dir := range []string{pgDir, minioDir} {
			if _, err := os.Stat(dir); err == nil {
				return dir + " still exists"
			}
		}
		return ""
	}
	if !waitFor(20*time.Second, func() bool { return gone() == "" }) {
		t.Fatal(gone())
	}
}

func TestSSHD(t *testing.T) {
	a, b := StartSSHD(t), StartSSHD(t)
	if a.Port == b.Port || a.Root == b.Root {
		t.Fatalf("two servers share port %d or root %s", a.Port, a.Root)
	}
	if !strings.HasPrefix(a.PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("PrivateKey is not OpenSSH PEM text")
	}
	if want := fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", a.Port); !strings.HasPrefix(a.KnownHosts, want) {
		t.Errorf("KnownHosts %q, want prefix %q", a.KnownHosts, want)
	}
	if other := a.OtherKnownHosts(t); other == a.KnownHosts || !strings.HasPrefix(other, fmt.Sprintf("[127.0.0.1]:%d ", a.Port)) {
		t.Errorf("OtherKnownHosts %q", other)
	}
	// The real ssh client logs in with the key and checks the pinned host key.
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(key, []byte(a.PrivateKey), 0o600)
	os.WriteFile(kh, []byte(a.KnownHosts+"\n"), 0o600)
	sshArgs := func(s *SSHD, known string) []string {
		return []string{"-F", "none", "-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
			"-p", fmt.Sprint(s.Port), s.User + "@" + s.Host}
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client to log in with")
	}
	out, err := exec.Command("ssh", append(sshArgs(a, kh), "echo", "hello")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("ssh login: %v: %s\n%s", err, out, readLog(a.Log))
	}
	// The other server has another host key: the pinned one is refused there.
	khB := filepath.Join(dir, "known_hosts_b")
	os.WriteFile(khB, []byte(strings.Replace(a.KnownHosts, fmt.Sprint(a.Port), fmt.Sprint(b.Port), 1)+"\n"), 0o600)
	if out, err := exec.Command("ssh", append(sshArgs(b, khB), "true")...).CombinedOutput(); err == nil {
		t.Errorf("ssh accepted another server's host key: %s", out)
	}
	a.Stop()
	a.Stop()
	if greets(a.Addr()) == nil {
		t.Error("the server still answers after Stop")
	}
	if greets(b.Addr()) != nil {
		t.Error("stopping one server stopped the other")
	}
}
