// Package dumpsource is the source that runs pg_dump itself: for databases past what Heroku's
// PGBackups can capture (20 GB), and for any Postgres reachable by URL. It streams pg_dump's
// standard output, of a length known only at its end, and fails the stream with pg_dump's own
// words when pg_dump fails, so that nothing is published. With PG_DUMP_JOBS above 1 it runs
// several pg_dumps reading one exported snapshot, as a set of streams (set.go).
package dumpsource

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Args are pg_dump's flags, those of Heroku's own logical backups: custom format, no ownership,
// no privileges, every identifier quoted (so a restore into a newer server parses it).
var Args = []string{"--format=custom", "--no-acl", "--no-owner", "--quote-all-identifiers"}

// DefaultSilence is how long pg_dump may write nothing while the archive waits for its bytes
// before it is killed: a server that stopped answering, a lock it waits for behind another
// session. pg_dump writes each table as it reads it, so a live dump of even one huge table
// writes far more often than this. Before its first byte, the silence counts only from
// startGrace after pg_dump started.
const DefaultSilence = 10 * time.Minute

// ConnectTimeout bounds each connection attempt of pg_dump and psql (PGCONNECT_TIMEOUT), in seconds.
const ConnectTimeout = 30

// startGrace is how long pg_dump may take to start and connect before its silence counts: it
// cannot write before it has connected, and connecting is bounded by PGCONNECT_TIMEOUT, after
// which pg_dump says itself what failed. Time a busy machine takes to run it is not silence
// either. Reading the catalog and taking the tables' locks, before the first byte too, is what
// the silence limit bounds. Tests shorten it.
var startGrace = ConnectTimeout * time.Second

// Database is the Postgres a target names.
type Database struct {
	URL string // secret: never logged
	// App and Name are the archive key's segments: the Heroku app and attachment, or VAR twice.
	App, Name string
	// RequireTLS forces sslmode=require (unless the host is the loopback): Heroku databases.
	RequireTLS bool
	Heroku     *catalog.HerokuOrigin
	EnvVar     string
}

// Locator finds the database a target names.
type Locator interface {
	Locate(ctx context.Context, t archive.Target) (Database, error)
}

// Source dumps databases with pg_dump.
type Source struct {
	Locate Locator
	// PgDump is pg_dump's path (PG_DUMP_PATH); "" is pg_dump on PATH. psql is looked for
	// beside it, then on PATH.
	PgDump  string
	Silence time.Duration // 0 is DefaultSilence
	// Secrets are scrubbed from pg_dump's and psql's words, beside each database's own URL.
	Secrets []string
	Now     func() time.Time
	// Jobs is PG_DUMP_JOBS: above 1, that many pg_dump processes share one exported snapshot
	// and the backup is a set of streams (set.go).
	Jobs int
	// ExcludeTableData and ExcludeSchema are pg_dump patterns (PG_DUMP_EXCLUDE_TABLE_DATA,
	// PG_DUMP_EXCLUDE_SCHEMA) passed to every pg_dump.
	ExcludeTableData []string
	ExcludeSchema    []string
	// Compress is pg_dump's --compress (PG_DUMP_COMPRESS); "" leaves pg_dump's default.
	Compress string
}

var _ archive.Source = (*Source)(nil)

// Open locates t's database, checks that pg_dump can dump its server, and starts pg_dump.
func (s *Source) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	log := zerolog.Ctx(ctx).With().Logger()
	db, err := s.Locate.Locate(ctx, t)
	if err != nil {
		return archive.Backup{}, err
	}
	conn, err := Connection(db)
	if err != nil {
		return archive.Backup{}, fmt.Errorf("dumpsource: %s: %w", t, err)
	}
	red := scrub.New(append([]string{db.URL, conn.password}, s.Secrets...)...)
	tools, client, server, err := versions(ctx, s.PgDump, conn, red)
	if err == nil {
		err = s.checkCompress(client)
	}
	if err != nil {
		return archive.Backup{}, fmt.Errorf("dumpsource: %s: %w", t, err)
	}
	started := s.now().UTC().Truncate(time.Second)
	id, err := identity()
	if err != nil {
		return archive.Backup{}, err
	}
	log.Info().Str("pg_dump", tools.PgDump).Str("pg_dump_version", client.Text).Str("server_version", server.Text).
		Str("backup", id).Msg("pg_dump started")
	args := s.args(db)
	b := archive.Backup{
		Meta: catalog.Meta{App: db.App, Database: db.Name, Backup: id, At: started, CreatedAt: started, Mode: "pg_dump",
			Origin: catalog.Origin{Source: "pg_dump", Heroku: db.Heroku, PgDump: &catalog.DumpOrigin{
				EnvVar: db.EnvVar, ClientVersion: client.Text, ServerVersion: server.Text, Args: args}}},
		Size: store.UnknownSize,
	}
	run := dumpRun{pgDump: tools.PgDump, conn: conn, silence: s.silence(), red: red, target: t.String()}
	if s.Jobs > 1 {
		return s.openSet(ctx, tools, run, db, args, b)
	}
	if b.Body, err = run.start(ctx, args, appName, nil); err != nil {
		return archive.Backup{}, err
	}
	return b, nil
}

// args are every pg_dump's flags for db, without the connection: Args, then what the
// configuration leaves out. Heroku's own logical backups leave out the heroku_ext schema, where
// Heroku installs extensions (help.heroku.com/7U1BTYHB): the extensions themselves are still
// dumped, and a restore into a Heroku database finds heroku_ext there already.
func (s *Source) args(db Database) []string {
	args := append([]string{}, Args...)
	if db.Heroku != nil {
		args = append(args, "--exclude-schema="+herokuExt)
	}
	for _, p := range s.ExcludeSchema {
		args = append(args, "--exclude-schema="+p)
	}
	for _, p := range s.ExcludeTableData {
		args = append(args, "--exclude-table-data="+p)
	}
	if s.Compress != "" {
		args = append(args, "--compress="+s.Compress)
	}
	return args
}

// compressNeeds is the oldest pg_dump that takes a --compress naming a method (lz4, zstd, or
// gzip:N) rather than a bare gzip level.
const compressNeeds = 16

// checkCompress refuses a --compress this pg_dump does not know, before it starts.
func (s *Source) checkCompress(client Version) error {
	if s.Compress == "" || len(s.Compress) == 1 || client.Major >= compressNeeds {
		return nil
	}
	return fmt.Errorf("PG_DUMP_COMPRESS=%s needs pg_dump %d or newer, and this is pg_dump %s: use a gzip level (0-9), or point PG_DUMP_PATH at a newer pg_dump", s.Compress, compressNeeds, client.Text)
}

// herokuExt is the schema Heroku installs extensions into on older databases.
const herokuExt = "heroku_ext"

// appName is the application_name of a single-stream pg_dump; a set's streams are
// pgoffsite-part-NN (stream 0 the first) and its snapshot session pgoffsite-snapshot.
const appName = "pgoffsite"

// versions finds pg_dump and psql, asks both versions, and refuses a pg_dump older than the
// server: it would fail part-way, or dump what it does not understand.
func versions(ctx context.Context, pgDump string, conn Conn, red *scrub.Redactor) (Tools, Version, Version, error) {
	tools, err := FindTools(pgDump)
	if err != nil {
		return tools, Version{}, Version{}, err
	}
	client, err := tools.DumpVersion(ctx)
	if err != nil {
		return tools, client, Version{}, err
	}
	server, err := tools.ServerVersion(ctx, conn, red)
	if err != nil {
		return tools, client, server, err
	}
	if client.Major < server.Major {
		return tools, client, server, fmt.Errorf("%s is pg_dump %s, older than the server's PostgreSQL %s: it cannot dump it; install a postgresql-client of version %d or newer, or point PG_DUMP_PATH at one",
			tools.PgDump, client.Text, server.Text, server.Major)
	}
	return tools, client, server, nil
}

// identity names a dump among the others of its database: the key holds its start time to the
// second beside it, so two runs in the same second still differ (and the store's conditional
// write stops the one in a billion that would not).
func identity() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("dumpsource: random identity: %w", err)
	}
	return "dump-" + hex.EncodeToString(b[:]), nil
}

func (s *Source) silence() time.Duration {
	if s.Silence > 0 {
		return s.Silence
	}
	return DefaultSilence
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Conn is how pg_dump and psql reach a database: the URL without its password (a command line
// is visible to every process on the machine) and the password in the environment.
type Conn struct {
	dsn      string
	password string
}

// Env is the environment of pg_dump and psql for c.
func (c Conn) Env() []string { return c.envAs(appName) }

// envAs is the environment of a pg_dump or psql session named app in pg_stat_activity.
func (c Conn) envAs(app string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGPASSWORD=") && !strings.HasPrefix(kv, "PGCONNECT_TIMEOUT=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGCONNECT_TIMEOUT="+strconv.Itoa(ConnectTimeout), "PGAPPNAME="+app)
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	}
	return env
}

// DSN is the connection URL without its password.
func (c Conn) DSN() string { return c.dsn }

// Connection parses db's URL. TLS: sslmode=require for a Heroku database whatever the URL says,
// and for any other URL that sets no sslmode, unless the host is the loopback (or a socket).
func Connection(db Database) (Conn, error) {
	u, err := url.Parse(db.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The parse error would quote the URL, password and all.
		return Conn{}, errors.New("the database URL is not a postgres:// URL")
	}
	var c Conn
	if p, ok := u.User.Password(); ok {
		c.password = p
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if !loopback(u.Hostname()) && (db.RequireTLS || q.Get("sslmode") == "") {
		q.Set("sslmode", "require")
	}
	u.RawQuery = q.Encode()
	c.dsn = u.String()
	return c, nil
}

func loopback(host string) bool {
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Tools are the pg_dump and psql a run uses.
type Tools struct {
	PgDump string
	Psql   string
}

// FindTools finds pg_dump: path (PG_DUMP_PATH, as config reads it), else on PATH; psql beside
// it, else on PATH.
func FindTools(path string) (Tools, error) {
	var t Tools
	if path == "" {
		p, err := exec.LookPath("pg_dump")
		if err != nil {
			return t, errors.New("pg_dump is not on PATH: install postgresql-client (Heroku's stacks ship it) or set PG_DUMP_PATH")
		}
		path = p
	} else if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return t, fmt.Errorf("PG_DUMP_PATH=%s is not an executable file", path)
	}
	t.PgDump = path
	if p := filepath.Join(filepath.Dir(path), "psql"); executable(p) {
		t.Psql = p
	} else if p, err := exec.LookPath("psql"); err == nil {
		t.Psql = p
	} else {
		return t, errors.New("psql is not on PATH (it asks the server its version): install postgresql-client")
	}
	return t, nil
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Version is a PostgreSQL version.
type Version struct {
	Major int
	Text  string // e.g. 16.4
}

var versionRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

func parseVersion(s string) (Version, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, false
	}
	// 9.6 and older had two-number majors; 9 < 10 is all the comparison needs of them.
	major, _ := strconv.Atoi(m[1])
	return Version{Major: major, Text: m[0]}, true
}

// DumpVersion runs pg_dump --version.
func (t Tools) DumpVersion(ctx context.Context) (Version, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, t.PgDump, "--version").Output()
	if err != nil {
		return Version{}, fmt.Errorf("%s --version: %w", t.PgDump, err)
	}
	_, rest, _ := strings.Cut(strings.TrimSpace(string(out)), ")") // pg_dump (PostgreSQL) 16.4 (Debian …)
	v, ok := parseVersion(rest)
	if !ok {
		return Version{}, fmt.Errorf("%s --version said %q: not a pg_dump", t.PgDump, strings.TrimSpace(string(out)))
	}
	return v, nil
}

// Query runs one SQL query with psql and returns its unaligned output; a failure carries psql's
// words, scrubbed.
func (t Tools) Query(ctx context.Context, c Conn, red *scrub.Redactor, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", c.dsn, "-c", sql)
	cmd.Env = c.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		words := strings.TrimSpace(red.Scrub(stderr.String()))
		if words == "" {
			words = err.Error()
		}
		return "", fmt.Errorf("connect: %s", words)
	}
	return strings.TrimSpace(string(out)), nil
}

// ServerVersion asks the server its version.
func (t Tools) ServerVersion(ctx context.Context, c Conn, red *scrub.Redactor) (Version, error) {
	out, err := t.Query(ctx, c, red, "SHOW server_version")
	if err != nil {
		return Version{}, err
	}
	v, ok := parseVersion(out)
	if !ok {
		return Version{}, fmt.Errorf("the server's version %q is not a PostgreSQL version", out)
	}
	return v, nil
}

// dump is pg_dump's standard output, read by the archive.
type dump struct {
	cmd     *exec.Cmd
	stdout  io.ReadCloser
	stderr  *tail
	red     *scrub.Redactor
	target  string
	silence time.Duration

	mu      sync.Mutex
	started time.Time // when pg_dump was started
	wrote   bool      // pg_dump wrote its first byte
	waiting time.Time // when the pending Read began; zero when none is pending
	stalled bool
	stop    chan struct{}
	done    bool
	err     error
	ended   func() // called once pg_dump is reaped; nil for none
}

// dumpRun is what starting a pg_dump of one target needs.
type dumpRun struct {
	pgDump  string
	conn    Conn
	silence time.Duration
	red     *scrub.Redactor
	target  string
}

// start starts pg_dump with args as app (PGAPPNAME); ended, when set, is called once when it has
// exited and been reaped.
func (r dumpRun) start(ctx context.Context, args []string, app string, ended func()) (*dump, error) {
	cmd := exec.Command(r.pgDump, append(append([]string{}, args...), "--dbname="+r.conn.dsn)...)
	cmd.Env = r.conn.envAs(app)
	// Its own process group, killed whole: a wrapper script's child must not keep the pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	d := &dump{cmd: cmd, stderr: &tail{max: 8 << 10}, red: r.red, target: r.target, silence: r.silence, stop: make(chan struct{}), ended: ended}
	cmd.Stderr = d.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("dumpsource: %s: %w", r.target, err)
	}
	d.stdout = stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dumpsource: start pg_dump for %s: %w", r.target, err)
	}
	d.started = time.Now()
	go d.watch(ctx)
	return d, nil
}

// watch kills pg_dump when the run is cancelled, or when it has written nothing for the silence
// limit while the archive waited for it (time the archive spends storing does not count, nor,
// before the first byte, pg_dump's startGrace).
func (d *dump) watch(ctx context.Context) {
	tick := time.NewTicker(max(min(d.silence/4, time.Second), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-ctx.Done():
			d.kill()
			return
		case now := <-tick.C:
			d.mu.Lock()
			from := d.waiting
			if !d.wrote && from.Before(d.started.Add(startGrace)) {
				from = d.started.Add(startGrace)
			}
			if !d.waiting.IsZero() && now.Sub(from) >= d.silence {
				d.stalled = true
				d.mu.Unlock()
				d.kill()
				return
			}
			d.mu.Unlock()
		}
	}
}

func (d *dump) Read(p []byte) (int, error) {
	d.mu.Lock()
	if d.done {
		d.mu.Unlock()
		if d.err != nil {
			return 0, d.err
		}
		return 0, io.EOF
	}
	d.waiting = time.Now()
	d.mu.Unlock()
	n, err := d.stdout.Read(p)
	d.mu.Lock()
	d.waiting = time.Time{}
	d.wrote = d.wrote || n > 0
	d.mu.Unlock()
	if err == nil {
		return n, nil
	}
	// Standard output closed: the stream is good only if pg_dump exited 0.
	werr := d.wait()
	if werr != nil {
		return n, werr
	}
	return n, io.EOF
}

func (d *dump) wait() error {
	err := d.cmd.Wait()
	close(d.stop)
	if d.ended != nil {
		defer d.ended()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
	if err == nil {
		return nil
	}
	words := strings.TrimSpace(d.red.Scrub(d.stderr.String()))
	how := err.Error()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = "pg_dump was killed (" + ws.Signal().String() + ")"
		} else {
			how = "pg_dump exited with status " + strconv.Itoa(ee.ExitCode())
		}
	}
	switch {
	case d.stalled && d.wrote:
		how = fmt.Sprintf("pg_dump wrote nothing for %s and was killed (a server that stopped answering, or a lock it waits for)", d.silence)
	case d.stalled:
		how = fmt.Sprintf("pg_dump wrote nothing in the %s after it started (%s to connect, then %s) and was killed (a server that stopped answering, or a lock it waits for)",
			startGrace+d.silence, startGrace, d.silence)
	}
	if words != "" {
		how += ": " + words
	}
	d.err = fmt.Errorf("dumpsource: pg_dump of %s failed: %s", d.target, how)
	return d.err
}

// Close stops pg_dump if it is still running (the archive gave up on it) and reaps it.
func (d *dump) Close() error {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if done {
		return nil
	}
	d.kill()
	_ = d.wait()
	return nil
}

// stopNow kills pg_dump unless it has ended: its Read then fails.
func (d *dump) stopNow() {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if !done {
		d.kill()
	}
}

func (d *dump) kill() { _ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL) }

// tail keeps the last max bytes written to it: pg_dump's last words are the ones that matter.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
