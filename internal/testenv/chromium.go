package testenv

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Chromium returns the path of Debian's chromium (PGOFFSITE_CHROMIUM_BIN overrides it), for
// looking at an HTML report in a real browser. Missing, it fails the test in CI and skips it
// elsewhere.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGOFFSITE_CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "no chromium", "apt-get install -y chromium")
	return ""
}

// Artifacts is the directory a test keeps what people look at afterwards (screenshots):
// PGOFFSITE_ARTIFACTS when set (CI uploads it), else a temporary directory of the test.
func Artifacts(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PGOFFSITE_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("testenv: artifacts directory: %v", err)
		}
		return dir
	}
	return t.TempDir()
}

// Browser runs Debian's chromium headless against local files. Every request it makes goes to
// a proxy that records it: a page that fetches anything is seen, not merely left to fail.
type Browser struct {
	t    testing.TB
	bin  string
	mu   sync.Mutex
	reqs []string
	addr string
}

// chromiumOwn are the requests Chromium itself makes at start (update checks, sign-in) that no
// flag turns off; any other request is the page's. Exact hosts: a page's font from
// fonts.googleapis.com would still count.
var chromiumOwn = map[string]bool{"update.googleapis.com": true, "accounts.google.com": true}

// NewBrowser starts the recording proxy; Chromium is found (or the test skipped, or failed in
// CI) as Chromium says.
func NewBrowser(t testing.TB) *Browser {
	b := &Browser{t: t, bin: Chromium(t)}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, host := r.Host, r.Host
		if r.Method != http.MethodConnect {
			target, host = r.URL.String(), r.URL.Host
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !chromiumOwn[host] {
			b.mu.Lock()
			b.reqs = append(b.reqs, r.Method+" "+target)
			b.mu.Unlock()
		}
		http.Error(w, "no network in this test", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	b.addr = proxy.Listener.Addr().(*net.TCPAddr).String()
	return b
}

// Requests are the page's requests so far.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.reqs...)
}

// Run runs chromium on file with extra arguments; it returns stdout and the console messages
// (Chromium logs each as a :CONSOLE line on stderr). A hang is killed after 60 s.
func (b *Browser) Run(file string, extra ...string) (stdout string, console []string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + b.t.TempDir(),
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--no-pings",
		"--disable-breakpad", "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
		"--proxy-server=http://" + b.addr, "--proxy-bypass-list=<-loopback>",
		"--enable-logging=stderr", "--v=0", "--hide-scrollbars"}
	args = append(append(args, extra...), "file://"+file)
	cmd := exec.CommandContext(ctx, b.bin, args...)
	// Chromium runs helper processes: its own process group, all killed on a hang.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		b.t.Fatalf("chromium %s: no answer within 60 s, killed", strings.Join(extra, " "))
	}
	if err != nil {
		b.t.Fatalf("chromium %s: %v\n%s", strings.Join(extra, " "), err, errOut.String())
	}
	for _, line := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			console = append(console, line)
		}
	}
	return out.String(), console
}
