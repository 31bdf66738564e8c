package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIO is a real S3 server started for the tests.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	DataDir   string
	mu        sync.Mutex
	seq       int
}

// kmsKey lets MinIO do SSE-S3 and default bucket encryption; fixed so restarts can read old objects.
const kmsKey = "pgoffsite-test:cGdvZmZzaXRlLXRlc3Qta21zLWtleS0zMi1ieXRlcyE="

var (
	minioOnce sync.Once
	minioInst *MinIO
	minioErr  error
)

// MinIOBinary is the MinIO server binary bin/test installs; without it t is skipped (failed in CI).
func MinIOBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("PGOFFSITE_MINIO_BIN")
	if bin == "" {
		bin = filepath.Join(CacheDir(), "bin", "minio")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(t, "MinIO server binary not found at "+bin)
	}
	return bin
}

// StartMinIO returns the test binary's MinIO server, starting it on first use.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	minioOnce.Do(func() { minioInst, minioErr = startMinIO(t, bin) })
	if minioErr != nil {
		t.Fatalf("testenv: start MinIO: %v", minioErr)
	}
	return minioInst
}

func startMinIO(t testing.TB, bin string) (*MinIO, error) {
	dir, err := os.MkdirTemp("", "pgoffsite-minio-")
	if err != nil {
		return nil, err
	}
	m := &MinIO{AccessKey: "pgoffsite" + randomHex(4), SecretKey: randomHex(20), Region: "us-east-1", DataDir: filepath.Join(dir, "data")}
	port, console := FreePort(t), FreePort(t)
	m.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", m.DataDir, "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_KMS_SECRET_KEY="+kmsKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_REGION="+m.Region)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	healthy := waitFor(30*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-exited:
		healthy = false
	default:
	}
	if !healthy {
		cmd.Process.Kill()
		log, _ := os.ReadFile(logf.Name())
		os.RemoveAll(dir)
		return nil, fmt.Errorf("not healthy within 30 s:\n%s", log)
	}
	atExit(func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	})
	return m, nil
}

// Client is an S3 client with the root credentials. It is built without the SDK's shared
// configuration on purpose: these machines set AWS_CA_BUNDLE, which that path mishandles.
func (m *MinIO) Client(t testing.TB) *s3.Client {
	return s3.New(s3.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
}

// CreateBucket makes a fresh bucket with a unique name starting with prefix.
func (m *MinIO) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	m.mu.Lock()
	m.seq++
	name := fmt.Sprintf("%s-%d-%s", strings.ToLower(prefix), m.seq, randomHex(3))
	m.mu.Unlock()
	if _, err := m.Client(t).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	return name
}

// IncompleteUploads lists the multipart uploads still open anywhere on this MinIO server.
// It reads MinIO's data directory, because ListMultipartUploads in MinIO answers only for an
// exact object key (with a shorter prefix it says "none" even while uploads are open). The data
// directory names an upload's folder by a hash of bucket/key, so it cannot tell buckets apart:
// bucket only labels the result, and tests that leave an upload open on purpose must abort it.
func (m *MinIO) IncompleteUploads(t testing.TB, bucket string) []string {
	t.Helper()
	root := filepath.Join(m.DataDir, ".minio.sys", "multipart")
	objects, _ := os.ReadDir(root)
	var open []string
	for _, o := range objects {
		uploads, _ := os.ReadDir(filepath.Join(root, o.Name()))
		for _, u := range uploads {
			open = append(open, bucket+":"+o.Name()+"/"+u.Name())
		}
	}
	return open
}

// IncompleteUploadsOf counts the multipart uploads open for exactly bucket/key.
func (m *MinIO) IncompleteUploadsOf(t testing.TB, bucket, key string) int {
	t.Helper()
	sum := sha256.Sum256([]byte(bucket + "/" + key))
	uploads, _ := os.ReadDir(filepath.Join(m.DataDir, ".minio.sys", "multipart", hex.EncodeToString(sum[:])))
	return len(uploads)
}
