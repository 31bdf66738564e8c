package herokusim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

const token = "hrku-test-2b1f0c9e-8d7a-4e55-a1f0-3c6e7d9b0a11"

var dataTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$`)

// answer is one HTTP exchange as a test sees it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes a JSON object body, failing the test otherwise.
func (a answer) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, a.body)
	}
	return m
}

func (a answer) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatalf("body is not a JSON array of objects: %v: %q", err, a.body)
	}
	return l
}

// call sends one request; key "" sends no Authorization header; body nil sends none.
func call(t *testing.T, method, url, key string, body any, header ...string) answer {
	t.Helper()
	return callWith(t, http.DefaultClient, method, url, key, body, header...)
}

// callWith is call through client c.
func callWith(t *testing.T, c *http.Client, method, url, key string, body any, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, req.URL.Path, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// clock is a settable time source for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// dumpFile writes content to a file that stands for a backup made earlier.
func dumpFile(t *testing.T, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "existing.dump")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeDump is bytes that start like a pg_dump custom archive, with a recognisable pattern.
func fakeDump(n int) []byte {
	b := make([]byte, n)
	copy(b, "PGDMP")
	for i := 5; i < n; i++ {
		b[i] = byte(i * 7 % 251)
	}
	return b
}

// publicURL asks the Data API for a backup's signed URL.
func publicURL(t *testing.T, data, app string, num int) (url, expiresAt string) {
	t.Helper()
	a := call(t, "POST", data+"/client/v11/apps/"+app+"/transfers/"+strconv.Itoa(num)+"/actions/public-url", token, nil)
	if a.status != 200 {
		t.Fatalf("public-url: %d %s", a.status, a.body)
	}
	m := a.obj(t)
	return m["url"].(string), m["expires_at"].(string)
}
