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
	"sync"
	"testing"
	"time"
)

// ToxiproxyVersion is the Toxiproxy release bin/test builds.
const ToxiproxyVersion = "v2.5.0"

// Toxiproxy puts real network faults and bandwidth limits between two local endpoints.
type Toxiproxy struct {
	API string // http://127.0.0.1:PORT, the admin API
	mu  sync.Mutex
	seq int
}

// Proxy is one listen → upstream proxy.
type Proxy struct {
	Listen string // 127.0.0.1:PORT
	name   string
	x      *Toxiproxy
}

// toxiServer is the test binary's one Toxiproxy, started on first use.
var toxiServer shared[Toxiproxy]

// ToxiproxyBin is the Toxiproxy server binary bin/test installs: $PGOFFSITE_TOXIPROXY_BIN, else
// CacheDir()/bin/server.
func ToxiproxyBin() string {
	return envOr("PGOFFSITE_TOXIPROXY_BIN", filepath.Join(CacheDir(), "bin", "server"))
}

// StartToxiproxy returns the test binary's Toxiproxy server, starting it on first use.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	bin := ToxiproxyBin()
	if _, err := os.Stat(bin); err != nil {
		missing(t, "Toxiproxy server binary not found at "+bin+" ($PGOFFSITE_TOXIPROXY_BIN)",
			"go install github.com/Shopify/toxiproxy/v2/cmd/server@"+ToxiproxyVersion+" into "+filepath.Join(CacheDir(), "bin"))
	}
	return toxiServer.get(t, "Toxiproxy", func() (*Toxiproxy, error) { return startToxiproxy(bin) })
}

func startToxiproxy(bin string) (*Toxiproxy, error) {
	dir, err := serverDir("toxiproxy")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	x := &Toxiproxy{API: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", fmt.Sprint(ports[0]))
	if _, err := startHealthy(cmd, filepath.Join(dir, "toxiproxy.log"), x.API+"/version", StartTimeout); err != nil {
		return nil, err
	}
	return x, nil
}

// do calls the admin API; a non-2xx answer is an error carrying the server's message.
func (x *Toxiproxy) do(method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, x.API+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Proxy creates a proxy to upstream (host:port) on a free local port; it is removed when t ends.
func (x *Toxiproxy) Proxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	x.mu.Lock()
	x.seq++
	name := fmt.Sprintf("p%d-%s", x.seq, randomHex(3))
	x.mu.Unlock()
	// The port is free when chosen but another process may take it first: try a few.
	var err error
	for range 3 {
		listen := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		err = x.do("POST", "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true})
		if err == nil {
			t.Cleanup(func() {
				if err := x.do("DELETE", "/proxies/"+name, nil); err != nil {
					t.Errorf("testenv: %v", err)
				}
			})
			return &Proxy{Listen: listen, name: name, x: x}
		}
	}
	t.Fatalf("testenv: %v", err)
	return nil
}

// AddToxic adds a toxic (bandwidth, latency, reset_peer, timeout, limit_data, slicer) with its
// attributes on the "upstream" or "downstream" stream, and returns its name.
func (p *Proxy) AddToxic(t testing.TB, typ, stream string, attrs map[string]any) string {
	t.Helper()
	name := typ + "-" + stream + "-" + randomHex(3)
	if err := p.x.do("POST", "/proxies/"+p.name+"/toxics",
		map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return name
}

// RemoveToxic removes a toxic added by AddToxic.
func (p *Proxy) RemoveToxic(t testing.TB, name string) {
	t.Helper()
	if err := p.x.do("DELETE", "/proxies/"+p.name+"/toxics/"+name, nil); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// SetEnabled opens or closes the proxy: disabled, it refuses connections and drops open ones.
func (p *Proxy) SetEnabled(t testing.TB, on bool) {
	t.Helper()
	if err := p.x.do("POST", "/proxies/"+p.name, map[string]any{"enabled": on}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
