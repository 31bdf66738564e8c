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

// Toxiproxy puts real network faults and bandwidth limits between two local endpoints.
type Toxiproxy struct {
	API string // http://127.0.0.1:PORT
	mu  sync.Mutex
	seq int
}

// Proxy is one listen → upstream proxy.
type Proxy struct {
	Listen string // 127.0.0.1:PORT
	name   string
	x      *Toxiproxy
}

var (
	toxiOnce sync.Once
	toxiInst *Toxiproxy
	toxiErr  error
)

// ToxiproxyBin is the Toxiproxy server binary bin/test installs.
func ToxiproxyBin() string {
	if b := os.Getenv("PGOFFSITE_TOXIPROXY_BIN"); b != "" {
		return b
	}
	return filepath.Join(CacheDir(), "bin", "server")
}

// StartToxiproxy returns the test binary's Toxiproxy server, starting it on first use.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	bin := ToxiproxyBin()
	if _, err := os.Stat(bin); err != nil {
		missing(t, "Toxiproxy server binary not found at "+bin)
	}
	toxiOnce.Do(func() {
		port := FreePort(t)
		cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", fmt.Sprint(port))
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if toxiErr = cmd.Start(); toxiErr != nil {
			return
		}
		x := &Toxiproxy{API: fmt.Sprintf("http://127.0.0.1:%d", port)}
		if !waitFor(15*time.Second, func() bool {
			resp, err := http.Get(x.API + "/version")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		}) {
			cmd.Process.Kill()
			toxiErr = fmt.Errorf("not answering within 15 s: %s", logs.String())
			return
		}
		atExit(func() { cmd.Process.Kill(); cmd.Wait() })
		toxiInst = x
	})
	if toxiErr != nil {
		t.Fatalf("testenv: start Toxiproxy: %v", toxiErr)
	}
	return toxiInst
}

func (x *Toxiproxy) call(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, x.API+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("testenv: toxiproxy %s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		json.Unmarshal(b, out)
	}
}

// Proxy creates a proxy to upstream (host:port) on a free local port; it is removed when t ends.
func (x *Toxiproxy) Proxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	x.mu.Lock()
	x.seq++
	name := fmt.Sprintf("p%d-%s", x.seq, randomHex(3))
	x.mu.Unlock()
	listen := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	x.call(t, "POST", "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true}, nil)
	t.Cleanup(func() { x.call(t, "DELETE", "/proxies/"+name, nil, nil) })
	return &Proxy{Listen: listen, name: name, x: x}
}

// AddToxic adds a toxic (bandwidth, latency, reset_peer, timeout, limit_data, slicer) on the
// "upstream" or "downstream" stream and returns its name.
func (p *Proxy) AddToxic(t testing.TB, typ, stream string, attrs map[string]any) string {
	t.Helper()
	name := typ + "-" + stream + "-" + randomHex(2)
	p.x.call(t, "POST", "/proxies/"+p.name+"/toxics",
		map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs}, nil)
	return name
}

// RemoveToxic removes a toxic added by AddToxic.
func (p *Proxy) RemoveToxic(t testing.TB, name string) {
	t.Helper()
	p.x.call(t, "DELETE", "/proxies/"+p.name+"/toxics/"+name, nil, nil)
}

// SetEnabled opens or closes the proxy: disabled, it refuses connections and drops open ones.
func (p *Proxy) SetEnabled(t testing.TB, on bool) {
	t.Helper()
	p.x.call(t, "POST", "/proxies/"+p.name, map[string]any{"enabled": on}, nil)
}
