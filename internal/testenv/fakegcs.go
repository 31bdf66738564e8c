package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeGCSVersion is the fake-gcs-server release bin/test builds.
const FakeGCSVersion = "v1.56.1"

// FakeGCS is Google Cloud Storage's emulator, fake-gcs-server, started for the tests. It speaks
// the JSON API (resumable uploads, preconditions, CRC32C) but enforces no IAM: a role cannot be
// proven on it.
type FakeGCS struct {
	Host string // 127.0.0.1:PORT, what STORAGE_EMULATOR_HOST and endpoint= take
	mu   sync.Mutex
	seq  int
}

// fakeGCSServer is the test binary's one fake-gcs-server, started on first use.
var fakeGCSServer shared[FakeGCS]

// FakeGCSBin is the fake-gcs-server binary bin/test installs: $PGOFFSITE_FAKE_GCS_BIN, else
// CacheDir()/bin/fake-gcs-server.
func FakeGCSBin() string {
	return envOr("PGOFFSITE_FAKE_GCS_BIN", filepath.Join(CacheDir(), "bin", "fake-gcs-server"))
}

// StartFakeGCS returns the test binary's fake-gcs-server, starting it on first use.
func StartFakeGCS(t testing.TB) *FakeGCS {
	t.Helper()
	bin := FakeGCSBin()
	if _, err := os.Stat(bin); err != nil {
		missing(t, "fake-gcs-server binary not found at "+bin+" ($PGOFFSITE_FAKE_GCS_BIN)",
			"go install github.com/fsouza/fake-gcs-server@"+FakeGCSVersion+" into "+filepath.Join(CacheDir(), "bin"))
	}
	return fakeGCSServer.get(t, "fake-gcs-server", func() (*FakeGCS, error) { return startFakeGCS(bin) })
}

func startFakeGCS(bin string) (*FakeGCS, error) {
	dir, err := serverDir("fake-gcs")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(ports[0]),
		"-public-host", host, "-backend", "memory", "-log-level", "warn")
	if _, err := startHealthy(cmd, filepath.Join(dir, "fake-gcs.log"), "http://"+host+"/storage/v1/b", StartTimeout); err != nil {
		return nil, err
	}
	return &FakeGCS{Host: host}, nil
}

// CreateBucket creates a bucket with a fresh name starting with prefix and returns its name.
func (f *FakeGCS) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	f.mu.Lock()
	f.seq++
	name := strings.ToLower(fmt.Sprintf("%s-%d-%s", prefix, f.seq, randomHex(3)))
	f.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+f.Host+"/storage/v1/b", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("testenv: create bucket %s: %s %s", name, resp.Status, bytes.TrimSpace(msg))
	}
	return name
}
