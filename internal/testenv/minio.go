package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
)

// MinIOVersion is the MinIO release bin/test builds (go install github.com/minio/minio@MinIOVersion).
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a real S3 server started for the tests.
type MinIO struct {
	s3Server
	DataDir string
	cmd     *exec.Cmd
	exited  <-chan struct{}
}

// kmsKey lets MinIO do SSE-S3 and default bucket encryption; fixed so a restarted server can
// read what it wrote before.
const kmsKey = "pgoffsite-test:cGdvZmZzaXRlLXRlc3Qta21zLWtleS0zMi1ieXRlcyE="

// minioServer is the test binary's one MinIO, started on first use.
var minioServer shared[MinIO]

// MinIOBinary is the MinIO server binary bin/test installs: $PGOFFSITE_MINIO_BIN, else
// CacheDir()/bin/minio. Without it t is skipped (failed in CI).
func MinIOBinary(t testing.TB) string {
	t.Helper()
	bin := envOr("PGOFFSITE_MINIO_BIN", filepath.Join(CacheDir(), "bin", "minio"))
	if _, err := os.Stat(bin); err != nil {
		missing(t, "MinIO server binary not found at "+bin+" ($PGOFFSITE_MINIO_BIN)",
			"GOFLAGS=-mod=mod go install github.com/minio/minio@"+MinIOVersion+" into "+filepath.Join(CacheDir(), "bin"))
	}
	return bin
}

// StartMinIO returns the test binary's MinIO server, starting it on first use.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	return minioServer.get(t, "MinIO", func() (*MinIO, error) { return startMinIO(bin) })
}

// StartOwnMinIO starts a MinIO server of t's own, with credentials of its own, stopped when t
// ends: a second provider beside StartMinIO's, or one a test takes down with Stop.
func StartOwnMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	m, err := startMinIO(bin)
	if err != nil {
		t.Fatalf("testenv: start MinIO: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Stop kills the server and waits until it is gone: its port refuses connections after.
func (m *MinIO) Stop() {
	m.cmd.Process.Kill()
	<-m.exited
}

func startMinIO(bin string) (*MinIO, error) {
	dir, err := serverDir("minio")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	m := &MinIO{s3Server: newS3Server(ports[0]), DataDir: filepath.Join(dir, "data")}
	cmd := exec.Command(bin, "server", m.DataDir, "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_KMS_SECRET_KEY="+kmsKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_REGION="+m.Region)
	exited, err := startHealthy(cmd, filepath.Join(dir, "minio.log"), m.Endpoint+"/minio/health/live", StartTimeout)
	if err != nil {
		return nil, err
	}
	m.cmd, m.exited = cmd, exited
	if err := WaitMinIOReady(m.Endpoint, m.AccessKey, m.SecretKey, nil, StartTimeout); err != nil {
		return nil, err
	}
	return m, nil
}

// WaitMinIOReady waits until a MinIO answers an IAM admin call made with its root credentials.
// Its health probe answers 200 before its object layer and IAM have loaded, while buckets cannot
// be made yet and a policy just added can still vanish. tr may be nil.
func WaitMinIOReady(endpoint, accessKey, secretKey string, tr http.RoundTripper, timeout time.Duration) error {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	adm, err := madmin.New(host, accessKey, secretKey, strings.HasPrefix(endpoint, "https://"))
	if err != nil {
		return err
	}
	if tr != nil {
		adm.SetCustomTransport(tr)
	}
	var last error
	ready := waitFor(timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, last = adm.ListUsers(ctx)
		return last == nil
	})
	if !ready {
		return fmt.Errorf("MinIO at %s not ready within %s: %v", endpoint, timeout, last)
	}
	return nil
}

// IncompleteUploads returns the S3 upload IDs of the multipart uploads still open on this MinIO
// server, sorted. It reads the data directory because MinIO's ListMultipartUploads answers only
// for an exact object key. MinIO keeps an open upload in
// .minio.sys/multipart/<sha256(bucket/key)>/<upload>/ until it is completed or aborted, and the
// hash cannot be traced back to a bucket: the answer covers every bucket of the server, so a test
// that leaves an upload open on purpose must abort it. IncompleteUploadsOf is exact.
func (m *MinIO) IncompleteUploads(t testing.TB, bucket string) []string {
	t.Helper()
	root := filepath.Join(m.DataDir, ".minio.sys", "multipart")
	objects, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("testenv: open uploads in %s: %v", bucket, err)
	}
	var open []string
	for _, o := range objects {
		open = append(open, m.uploadsIn(t, filepath.Join(root, o.Name()))...)
	}
	sort.Strings(open)
	return open
}

// IncompleteUploadsOf returns the upload IDs of the multipart uploads open for exactly bucket/key.
func (m *MinIO) IncompleteUploadsOf(t testing.TB, bucket, key string) []string {
	t.Helper()
	// MinIO's own path join: cleaned, a trailing slash kept.
	p := path.Join(bucket, key)
	if strings.HasSuffix(key, "/") {
		p += "/"
	}
	sum := sha256.Sum256([]byte(p))
	open := m.uploadsIn(t, filepath.Join(m.DataDir, ".minio.sys", "multipart", hex.EncodeToString(sum[:])))
	sort.Strings(open)
	return open
}

// uploadsIn lists the upload directories of one object's multipart folder as S3 upload IDs:
// base64url("<deployment id>.<directory name>").
func (m *MinIO) uploadsIn(t testing.TB, objectDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(objectDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatalf("testenv: open uploads: %v", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, base64.RawURLEncoding.EncodeToString([]byte(m.deploymentID(t)+"."+e.Name())))
		}
	}
	return ids
}

func (m *MinIO) deploymentID(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.DataDir, ".minio.sys", "format.json"))
	var f struct{ ID string }
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil || f.ID == "" {
		t.Fatalf("testenv: MinIO deployment id from format.json: %v", err)
	}
	return f.ID
}

// StoredParts counts the parts MinIO holds for the multipart uploads open on the server (files
// part.N in .minio.sys/multipart/<object>/<upload>/<data dir>/). A test that interrupts an
// upload waits for one: by then the client has the upload's ID, which it cannot yet have while
// the CreateMultipartUpload answer is still on its way.
func (m *MinIO) StoredParts(t testing.TB) int {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(m.DataDir, ".minio.sys", "multipart", "*", "*", "*", "part.*"))
	if err != nil {
		t.Fatalf("testenv: stored parts: %v", err)
	}
	n := 0
	for _, p := range parts {
		if !strings.HasSuffix(p, ".meta") {
			n++
		}
	}
	return n
}
