// Package testenv starts the real servers integration tests run against — PostgreSQL, MinIO and
// Toxiproxy — once per test binary, on loopback. A missing server binary skips the test on a
// developer machine and fails it in CI (CI=true): a green CI must mean the real tests ran.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where a missing server is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

var (
	stopMu sync.Mutex
	stops  []func()
)

func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// Main runs the tests and then stops every server this test binary started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	stopMu.Lock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stopMu.Unlock()
	os.Exit(code)
}

// missing skips t, or fails it in CI.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := what + " (bin/test installs it; run the tests through bin/test)"
	if InCI() {
		t.Fatalf("testenv: %s", msg)
	}
	t.Skipf("testenv: %s", msg)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
		time.Sleep(100 * time.Millisecond)
	}
	return ok()
}

// Postgres is a PostgreSQL server started for the tests.
type Postgres struct {
	Host   string
	Port   int
	User   string
	BinDir string
	dir    string
	seq    int
	mu     sync.Mutex
}

var (
	pgOnce sync.Once
	pgInst *Postgres
	pgErr  error
)

// StartPostgres returns the test binary's PostgreSQL server, starting it on first use.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		missing(t, "PostgreSQL server binaries (initdb, pg_ctl) not found")
	}
	pgOnce.Do(func() { pgInst, pgErr = startPostgres(bin) })
	if pgErr != nil {
		t.Fatalf("testenv: start PostgreSQL: %v", pgErr)
	}
	return pgInst
}

func pgBinDir() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// asOwner runs a server command; initdb and postgres refuse to run as root, so as root they
// run as the postgres user.
func asOwner(name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...)
	}
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
}

func startPostgres(bin string) (*Postgres, error) {
	dir, err := os.MkdirTemp("", "pgoffsite-pg-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asOwner(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var port int
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
		out, err := asOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
	p := &Postgres{Host: "127.0.0.1", Port: port, User: "postgres", BinDir: bin, dir: dir}
	atExit(func() {
		asOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	})
	return p, nil
}

// Bin returns the path of a PostgreSQL program, e.g. Bin("pg_dump").
func (p *Postgres) Bin(name string) string { return filepath.Join(p.BinDir, name) }

// DSN is the connection URL of database db.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", p.User, p.Host, p.Port, db)
}

// CreateDB makes a fresh, empty database with a unique name starting with prefix.
func (p *Postgres) CreateDB(t testing.TB, prefix string) (name, dsn string) {
	t.Helper()
	p.mu.Lock()
	p.seq++
	name = fmt.Sprintf("%s_%d_%s", strings.ReplaceAll(strings.ToLower(prefix), "-", "_"), p.seq, randomHex(3))
	p.mu.Unlock()
	p.Exec(t, "postgres", "CREATE DATABASE "+name)
	return name, p.DSN(name)
}

// Exec runs sql in database db with psql and fails the test on any error.
func (p *Postgres) Exec(t testing.TB, db, sql string) {
	t.Helper()
	if out, err := p.Query(db, sql); err != nil {
		t.Fatalf("testenv: psql %s: %v\n%s", db, err, out)
	}
}

// Query runs sql in database db and returns psql's unaligned, tuples-only output.
func (p *Postgres) Query(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", p.User, "-d", db)
	cmd.Stdin = strings.NewReader(sql)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
