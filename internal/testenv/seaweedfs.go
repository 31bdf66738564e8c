package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SeaweedFSVersion is the SeaweedFS release bin/test builds (weed from
// github.com/seaweedfs/seaweedfs@SeaweedFSVersion, built inside its module: see bin/lib/setup.sh).
const SeaweedFSVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// SeaweedFS is a real SeaweedFS (`weed mini`: master, volume server, filer and S3 gateway in one
// process) started for the tests: a second S3 implementation beside MinIO.
type SeaweedFS struct {
	s3Server
	DataDir string
}

// seaweedServer is the test binary's one SeaweedFS, started on first use.
var seaweedServer shared[SeaweedFS]

// SeaweedFSBinary is the weed binary bin/test builds: $PGOFFSITE_WEED_BIN, else
// CacheDir()/bin/weed. Without it t is skipped (failed in CI).
func SeaweedFSBinary(t testing.TB) string {
	t.Helper()
	bin := envOr("PGOFFSITE_WEED_BIN", filepath.Join(CacheDir(), "bin", "weed"))
	if _, err := os.Stat(bin); err != nil {
		missing(t, "SeaweedFS binary not found at "+bin+" ($PGOFFSITE_WEED_BIN)",
			"its ensure_seaweedfs builds github.com/seaweedfs/seaweedfs/weed@"+SeaweedFSVersion+" into "+filepath.Join(CacheDir(), "bin"))
	}
	return bin
}

// StartSeaweedFS returns the test binary's SeaweedFS, starting it on first use.
func StartSeaweedFS(t testing.TB) *SeaweedFS {
	t.Helper()
	bin := SeaweedFSBinary(t)
	return seaweedServer.get(t, "SeaweedFS", func() (*SeaweedFS, error) { return startSeaweedFS(bin) })
}

func startSeaweedFS(bin string) (*SeaweedFS, error) {
	dir, err := serverDir("seaweedfs")
	if err != nil {
		return nil, err
	}
	// Every listener on a port of its own: test packages run side by side.
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	w := &SeaweedFS{s3Server: newS3Server(ports[0]), DataDir: filepath.Join(dir, "data")}
	if err := os.MkdirAll(w.DataDir, 0o700); err != nil {
		return nil, err
	}
	// One identity that may do everything: without any, the gateway lets anonymous requests in.
	conf, err := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "pgoffsite",
		"credentials": []any{map[string]string{"accessKey": w.AccessKey, "secretKey": w.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	cmd := exec.Command(bin, "mini", "-dir="+w.DataDir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port="+port(0), "-s3.port.grpc="+port(1), "-s3.config="+confPath, "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.port="+port(2), "-master.port.grpc="+port(3), "-master.telemetry=false",
		"-volume.port="+port(4), "-volume.port.grpc="+port(5),
		"-filer.port="+port(6), "-filer.port.grpc="+port(7),
		"-webdav=false", "-admin.ui=false", "-admin.port.legacy=0")
	cmd.Dir = dir
	logPath := filepath.Join(dir, "weed.log")
	exited, err := startHealthy(cmd, logPath, w.Endpoint+"/healthz", StartTimeout)
	if err != nil {
		return nil, err
	}
	// The gateway answers before the filer and volume server can take a bucket: wait for one.
	var last error
	ready := waitFor(StartTimeout, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, last = w.Client(nil).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pgoffsite-ready")})
		return last == nil || strings.Contains(last.Error(), "BucketAlreadyOwnedByYou")
	})
	select {
	case <-exited:
		return nil, fmt.Errorf("SeaweedFS exited:\n%s", readLog(logPath))
	default:
	}
	if !ready {
		return nil, fmt.Errorf("SeaweedFS at %s takes no bucket within %s: %v\n%s", w.Endpoint, StartTimeout, last, readLog(logPath))
	}
	return w, nil
}

// IncompleteUploads returns the multipart uploads open in bucket ("KEY UPLOADID"), as the
// gateway lists them.
func (w *SeaweedFS) IncompleteUploads(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.Client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("testenv: list multipart uploads of %s: %v", bucket, err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ids
}
