// Package testenv starts the real servers integration tests run against — PostgreSQL, MinIO and
// Toxiproxy once per test binary, OpenSSH once per call — on loopback. A missing server binary
// skips the test on a developer machine and fails it in CI (CI=true): a green CI must mean the
// real tests ran.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout is how long a server may take to answer after it is started. Seconds when the
// machine is idle; bin/test runs packages side by side on two CPUs, where the servers of several
// test binaries start at once, so the wait is generous: a server that does not come up still
// fails the test, with its log.
const StartTimeout = 2 * time.Minute

// InCI reports whether the tests run in CI, where a missing server is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Main runs the tests and then stops every server this test binary started and removes their
// data. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	stopAll()
	os.Exit(code)
}

// missing skips t, or fails it in CI. install says how bin/test provides what is missing.
func missing(t testing.TB, what, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s; bin/test installs it (%s)", what, install)
	if InCI() {
		t.Fatalf("testenv: %s", msg)
	}
	t.Skipf("testenv: %s", msg)
}

// The servers are stopped by a separate cleanup process that runs the registered shell commands
// when its stdin closes: when Main ends, but also when the test binary dies from a panic, a test
// timeout or a signal, which Main never sees. So no server outlives its test binary.
var (
	reaperMu  sync.Mutex
	reaperIn  io.WriteCloser
	reaperCmd *exec.Cmd
)

// onExit registers a shell command that undoes a server start.
func onExit(script string) error {
	reaperMu.Lock()
	defer reaperMu.Unlock()
	if reaperCmd == nil {
		cmd := exec.Command("/bin/sh", "-c", `cmds=$(cat); eval "$cmds"`)
		// Its own process group: Ctrl-C stops the tests, not their cleanup.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		in, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("cleanup process: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("cleanup process: %w", err)
		}
		reaperCmd, reaperIn = cmd, in
	}
	if _, err := io.WriteString(reaperIn, script+" >/dev/null 2>&1\n"); err != nil {
		return fmt.Errorf("cleanup process: %w", err)
	}
	return nil
}

// stopAll runs the registered cleanups and waits for them.
func stopAll() {
	reaperMu.Lock()
	defer reaperMu.Unlock()
	if reaperCmd == nil {
		return
	}
	reaperIn.Close()
	reaperCmd.Wait()
	reaperCmd, reaperIn = nil, nil
}

// killScript kills pid and waits (briefly: a zombie stays visible) until it is gone.
func killScript(pid int) string {
	return fmt.Sprintf("kill -9 %d; i=0; while kill -0 %d && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done", pid, pid)
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ports[0]
}

// freePorts returns n distinct free ports: all listeners are held until every port is chosen.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// CacheDir is where bin/test keeps server binaries between runs.
func CacheDir() string {
	if d := os.Getenv("PGOFFSITE_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "pgoffsite")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls ok until it returns true or timeout passes.
func waitFor(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ok()
}

// serverDir makes a directory for one server's data and log, removed when the test binary ends.
func serverDir(name string) (string, error) {
	dir, err := os.MkdirTemp("", "pgoffsite-"+name+"-")
	if err != nil {
		return "", err
	}
	if err := onExit("rm -rf " + shellQuote(dir)); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// startHealthy starts a long-running server with its output in logPath and waits until a GET
// of health answers 200. The process is killed when the test binary ends; exited is closed when
// it has.
func startHealthy(cmd *exec.Cmd, logPath, health string, timeout time.Duration) (exited <-chan struct{}, err error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	return startUntil(cmd, logPath, "answering at "+health, timeout, func() bool {
		resp, err := hc.Get(health)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startUntil starts a long-running server with its output in logPath and waits until ready
// (what says what it waits for), or the server exits, or timeout passes.
func startUntil(cmd *exec.Cmd, logPath, what string, timeout time.Duration, ready func() bool) (exited <-chan struct{}, err error) {
	exited, err = startServer(cmd, logPath)
	if err != nil {
		return nil, err
	}
	ok := waitFor(timeout, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return ready()
	})
	select {
	case <-exited:
		return nil, fmt.Errorf("%s exited: %v\n%s", cmd.Path, cmd.ProcessState, readLog(logPath))
	default:
	}
	if !ok {
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("%s not %s within %s:\n%s", cmd.Path, what, timeout, readLog(logPath))
	}
	return exited, nil
}

// startServer starts a long-running server process with its output in logPath; exited is
// closed when it ends. The process is killed when the test binary ends.
func startServer(cmd *exec.Cmd, logPath string) (exited <-chan struct{}, err error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := onExit(killScript(cmd.Process.Pid)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return done, nil
}

// readLog returns a server's output for a failure message.
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// shared is a server of which a test binary starts one, on first use, for all its tests; a start
// that failed fails every test that asks for it.
type shared[T any] struct {
	once sync.Once
	v    *T
	err  error
}

func (s *shared[T]) get(t testing.TB, name string, start func() (*T, error)) *T {
	t.Helper()
	s.once.Do(func() { s.v, s.err = start() })
	if s.err != nil {
		t.Fatalf("testenv: start %s: %v", name, s.err)
	}
	return s.v
}

// envOr is the variable's value, or def when it is unset or empty: where bin/test put a server.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
