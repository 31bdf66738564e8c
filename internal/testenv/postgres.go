package testenv

import (
	"bytes"
	"context"
	"fmt"
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

// Postgres is a PostgreSQL server started for the tests, trusting every local connection.
type Postgres struct {
	Host   string
	Port   int
	User   string
	BinDir string
	dir    string
	seq    int
	mu     sync.Mutex
}

// pgServer is the test binary's one PostgreSQL, started on first use.
var pgServer shared[Postgres]

// StartPostgres returns the test binary's PostgreSQL server, starting it on first use.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := PostgresBinDir()
	if bin == "" {
		missing(t, "PostgreSQL server programs (initdb, pg_ctl, psql) not found via pg_config --bindir or in /usr/lib/postgresql/*/bin",
			"apt-get install postgresql")
	}
	return pgServer.get(t, "PostgreSQL", func() (*Postgres, error) { return startPostgres(bin) })
}

// PostgresBinDir is the directory of the PostgreSQL server and client programs ("" if none):
// pg_config's, else the newest /usr/lib/postgresql/N/bin.
func PostgresBinDir() string {
	complete := func(d string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres", "psql"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); complete(d) {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return v }
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if complete(d) {
			return d
		}
	}
	return ""
}

// asOwner builds the command line of a server program; initdb and postgres refuse to run as
// root, so as root they run as the postgres user.
func asOwner(args ...string) []string {
	if os.Geteuid() != 0 {
		return args
	}
	return []string{"su", "postgres", "-s", "/bin/sh", "-c", shellJoin(args)}
}

func runAsOwner(args ...string) ([]byte, error) {
	a := asOwner(args...)
	return exec.Command(a[0], a[1:]...).CombinedOutput()
}

func startPostgres(bin string) (*Postgres, error) {
	// The postgres user must reach the directory: as root, a private TMPDIR will not do.
	base := os.TempDir()
	if fi, err := os.Stat(base); os.Geteuid() == 0 && (err != nil || fi.Mode().Perm()&0o001 == 0) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgoffsite-pg-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user (apt-get install postgresql creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := runAsOwner(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	stop := shellJoin(asOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"))
	if err := onExit(stop + "; rm -rf " + shellQuote(dir)); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	// The port is free when chosen but another process may take it first: try a few.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
			ports[0], dir)
		out, err := runAsOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logPath, "-w", "-t", strconv.Itoa(int(StartTimeout.Seconds())), "-o", opts, "start")
		if err == nil {
			return &Postgres{Host: "127.0.0.1", Port: ports[0], User: "postgres", BinDir: bin, dir: dir}, nil
		}
		if attempt == 3 {
			return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, readLog(logPath))
		}
	}
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
	seq := p.seq
	p.mu.Unlock()
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, strings.ToLower(prefix))
	name = fmt.Sprintf("%s_%d_%s", clean, seq, randomHex(3))
	p.Exec(t, "postgres", `CREATE DATABASE "`+name+`"`)
	return name, p.DSN(name)
}

// Exec runs sql in database db with psql (ON_ERROR_STOP) and fails the test on any error.
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

// Dump is `pg_dump -Fc --no-owner` of the database at dsn, written to a pipe as Heroku's
// backups are; it fails t on any error, and gives pg_dump a minute.
func (p *Postgres) Dump(t testing.TB, dsn string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, p.Bin("pg_dump"), "-Fc", "--no-owner", "-d", dsn)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: pg_dump: %v: %s", err, stderr.String())
	}
	return out
}
