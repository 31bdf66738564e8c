// Package pgrestore streams a pg_dump custom-format archive into a PostgreSQL database with
// pg_restore (no temporary file) and counts what arrived. It is the one place that runs
// pg_restore and psql against a target: verify's scratch restore and `restore --to postgres://`
// both go through it.
//
// The restore runs in one transaction, and the last bytes of the archive are held back until
// the caller has checked what it streamed (size, SHA-256, structure) and calls Finish: pg_restore
// cannot reach the end of the archive, nor commit, before that. Abort instead ends pg_restore
// and its transaction is rolled back, so a damaged archive leaves the target as it was.
package pgrestore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"golang.org/x/sync/errgroup"
)

// Options name the target and how to reach it.
type Options struct {
	URL      string // the target database, postgres://...
	PgBinDir string // where pg_restore and psql are ("" = PATH)
	// LockTimeout bounds each wait of the restore for a lock another session of the target
	// holds; default 2 minutes. Without it a restore behind an open transaction waits for ever
	// (the archive itself sets lock_timeout = 0, so the server's setting cannot help).
	LockTimeout time.Duration
	// Clean drops the archive's objects from the target before recreating them
	// (pg_restore --clean --if-exists); without it an object that exists fails the restore.
	Clean bool
	// Name names the sessions (application_name pgoffsite-NAME-...); default "restore".
	Name string
}

// ConnectTimeout bounds each connection attempt of pg_restore and psql (PGCONNECT_TIMEOUT).
const ConnectTimeout = 30 * time.Second

// conn is how the programs reach the target: the URL without its password, which goes in
// PGPASSWORD instead, so that it is not on a command line other processes can read.
type conn struct {
	dsn      string
	password string
	red      *scrub.Redactor
}

func (o Options) conn() conn {
	c := conn{dsn: o.URL, red: scrub.New(o.URL)}
	if pw, ok := rawPassword(o.URL); ok {
		// Also when the URL does not parse: libpq echoes the token it cannot read.
		c.red.Add(pw)
		if dec, err := url.PathUnescape(pw); err == nil {
			c.red.Add(dec)
		}
	}
	if u, err := url.Parse(o.URL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			c.password = pw
			c.red.Add(pw)
			u.User = url.User(u.User.Username())
			c.dsn = u.String()
		}
	}
	return c
}

// rawPassword is the password of a URL as written, found without parsing it: user:PASSWORD@.
func rawPassword(raw string) (string, bool) {
	_, rest, ok := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return "", false
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	return pw, ok && pw != ""
}

// env is the environment of pg_restore and psql: connecting gives up after ConnectTimeout, and
// the session is named so that the lock watch finds it.
func (c conn) env(appName string) []string {
	env := append(os.Environ(), "PGCONNECT_TIMEOUT="+strconv.Itoa(int(ConnectTimeout/time.Second)), "PGAPPNAME="+appName)
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	}
	return env
}

func (o Options) bin(name string) string {
	if o.PgBinDir != "" {
		return filepath.Join(o.PgBinDir, name)
	}
	return name
}

func (o Options) name() string {
	if o.Name == "" {
		return "restore"
	}
	return o.Name
}

// psql runs one query against the target and returns its unaligned, tuples-only answer; its
// output in an error is scrubbed of the target's secrets.
func (o Options) psql(ctx context.Context, c conn, appName, query string) (string, error) {
	return o.psqlWithin(ctx, c, appName, query, ConnectTimeout+time.Minute)
}

// psqlWithin is psql with a deadline of its own, for a query whose time grows with the data.
func (o Options) psqlWithin(ctx context.Context, c conn, appName, query string, within time.Duration) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	cmd := exec.CommandContext(qctx, o.bin("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.dsn, "-c", query)
	cmd.Env = c.env(appName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", within)
		}
		return "", fmt.Errorf("psql: %v: %s", err, c.red.Scrub(lastLines(stderr.String(), 3)))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// nonEmptyQuery lists what makes a database non-empty: any table, view, materialized view,
// sequence, foreign table, function or procedure, type or domain, or schema outside the
// system schemas (pg_catalog, information_schema, pg_toast and pg_temp_*), and the public
// schema only as the home of those. Objects an extension installs count too: a restore would
// meet them. Extensions alone (plpgsql comes with every database) do not.
const nonEmptyQuery = `SELECT kind || ' ' || quote_ident(nsp) || CASE name WHEN '' THEN '' ELSE '.' || quote_ident(name) END FROM (
	SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
		WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' END AS kind, n.nspname AS nsp, c.relname AS name
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
	UNION ALL
	SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, n.nspname, p.proname
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	UNION ALL
	SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, n.nspname, t.typname
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE t.typtype IN ('c', 'd', 'e', 'r', 'm') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
	UNION ALL
	SELECT 'schema', n.nspname, '' FROM pg_namespace n WHERE n.nspname <> 'public'
	) o
	WHERE nsp NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nsp NOT LIKE 'pg\_temp\_%' AND nsp NOT LIKE 'pg\_toast\_temp\_%'
	ORDER BY 1 LIMIT 11`

// Objects lists (up to 11 of) what the target holds outside the system schemas, as
// "table public.orders": none means the target is empty. An error means it could not be told.
func Objects(ctx context.Context, o Options) ([]string, error) {
	c := o.conn()
	out, err := o.psql(ctx, c, "pgoffsite-"+o.name()+"-check", nonEmptyQuery)
	if err != nil {
		return nil, fmt.Errorf("pgrestore: look into the target database: %w", err)
	}
	if out == "" {
		return nil, nil
	}
	var objs []string
	for _, l := range strings.Split(out, "\n") {
		objs = append(objs, strings.TrimSpace(l))
	}
	return objs, nil
}

// holdBack is how many of the archive's last bytes wait for Finish. One would do: the archive
// ends with its last data block's end marker, which pg_restore must read before it can go on.
const holdBack = 4 << 10

// Restore is one pg_restore run reading the archive from its standard input.
type Restore struct {
	o       Options
	c       conn
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  bytes.Buffer
	tail    []byte // the last bytes written, held back until Finish
	ctx     context.Context
	cancel  context.CancelCauseFunc // ends pg_restore, with why
	exited  chan struct{}           // pg_restore has exited; waitErr is set
	waitErr error
	watched chan struct{} // the lock watch has ended
}

// ErrRolledBack ends the error of a restore that did not commit: it ran in one transaction, so
// the database is as it was before.
var ErrRolledBack = errors.New("its transaction was rolled back: the database is as it was")

// ErrCommittedEarly reports that pg_restore finished, and committed, before the archive's check
// did: the archive ended early for it (its table of contents was damaged, say).
var ErrCommittedEarly = errors.New("pg_restore finished before the end of the archive and committed what it had read: the database holds that")

// errAborted is the cause of the end of a restore the caller aborted.
var errAborted = errors.New("aborted")

// Start runs pg_restore into o.URL, reading the archive from what is written to the Restore.
// Cancelling ctx ends it (its transaction is then rolled back).
func Start(ctx context.Context, o Options) (*Restore, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	r := &Restore{o: o, c: o.conn(), ctx: rctx, cancel: cancel, exited: make(chan struct{}), watched: make(chan struct{})}
	args := []string{"--no-owner", "--no-acl", "--exit-on-error", "--single-transaction"}
	if o.Clean {
		args = append(args, "--clean", "--if-exists")
	}
	r.cmd = exec.CommandContext(rctx, o.bin("pg_restore"), append(args, "-d", r.c.dsn)...)
	app := fmt.Sprintf("pgoffsite-%s-%d-%d", o.name(), os.Getpid(), time.Now().UnixNano())
	r.cmd.Env = r.c.env(app)
	r.cmd.Stderr = &r.stderr
	r.cmd.WaitDelay = 10 * time.Second // a killed pg_restore's stderr is not waited on for ever
	in, err := r.cmd.StdinPipe()
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("pgrestore: %w", err)
	}
	r.stdin = in
	if err := r.cmd.Start(); err != nil {
		cancel(nil)
		return nil, fmt.Errorf("pgrestore: start pg_restore: %w", err)
	}
	go func() {
		defer close(r.exited)
		r.waitErr = r.cmd.Wait()
	}()
	go func() {
		defer close(r.watched)
		r.watchLocks(app)
	}()
	return r, nil
}

// Write passes p on to pg_restore, keeping the last holdBack bytes of the archive back.
func (r *Restore) Write(p []byte) (int, error) {
	n := len(p)
	if len(r.tail)+len(p) <= holdBack {
		r.tail = append(r.tail, p...)
		return n, nil
	}
	if len(p) >= holdBack {
		if err := r.write(r.tail); err != nil {
			return 0, err
		}
		if err := r.write(p[:len(p)-holdBack]); err != nil {
			return 0, err
		}
		r.tail = append(r.tail[:0], p[len(p)-holdBack:]...)
		return n, nil
	}
	out := len(r.tail) + len(p) - holdBack // from the tail
	if err := r.write(r.tail[:out]); err != nil {
		return 0, err
	}
	r.tail = append(r.tail[:copy(r.tail, r.tail[out:])], p...)
	return n, nil
}

func (r *Restore) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := r.stdin.Write(p); err != nil {
		return fmt.Errorf("pg_restore stopped reading the archive: %w", err)
	}
	return nil
}

// Finish gives pg_restore the rest of the archive and waits for it to commit.
func (r *Restore) Finish() error {
	err := r.write(r.tail)
	r.stdin.Close()
	<-r.exited
	if werr := r.end(); werr != nil || err == nil {
		return werr
	}
	return err
}

// Abort ends pg_restore before it commits, so that its transaction is rolled back and the target
// keeps what it had; it returns nil then. When pg_restore had already ended on its own, or was
// stopped by the lock watch or an interruption, Abort returns why; had pg_restore finished (the
// archive ended early for it), Abort returns an error saying it committed what it had read.
func (r *Restore) Abort() error {
	r.cancel(errAborted) // the first cause stays: a lock watch's or an interruption's
	r.stdin.Close()
	<-r.exited
	cause := context.Cause(r.ctx)
	own := r.cmd.ProcessState != nil && r.cmd.ProcessState.Exited() // not killed by us
	err := r.end()
	switch {
	case own && err == nil:
		return ErrCommittedEarly
	case own || cause != errAborted:
		return err
	}
	return nil
}

// end stops the lock watch and says how pg_restore ended.
func (r *Restore) end() error {
	stopped := context.Cause(r.ctx) // set when the lock watch ended the restore
	r.cancel(nil)
	<-r.watched
	switch {
	case r.waitErr == nil:
		return nil
	case stopped != nil && stopped != context.Canceled && stopped != errAborted:
		return fmt.Errorf("pg_restore stopped: %w; %w", stopped, ErrRolledBack)
	case stopped == context.Canceled:
		return fmt.Errorf("pg_restore was interrupted; %w", ErrRolledBack)
	}
	return fmt.Errorf("pg_restore failed: %v: %s; %w", r.waitErr, r.c.red.Scrub(Errors(r.stderr.String())), ErrRolledBack)
}

// lockPoll is how often the lock watch looks at the restore's session.
const lockPoll = time.Second

// watchLocks ends the restore (through r.cancel) once its session has waited longer than
// LockTimeout for a lock another session holds, naming that session's pids; it returns when
// the restore ends. A failed look is not an error: the next one may work, and pg_restore's own
// errors are what matter then.
func (r *Restore) watchLocks(app string) {
	limit := r.o.LockTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	q := fmt.Sprintf(`SELECT extract(epoch FROM now() - query_start)::bigint || ' ' || array_to_string(pg_blocking_pids(pid), ',')
		FROM pg_stat_activity WHERE application_name = '%s' AND wait_event_type = 'Lock'`, app)
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		out, err := r.o.psql(r.ctx, r.c, app+"-watch", q)
		secs, pids, ok := strings.Cut(out, " ")
		if err != nil || !ok {
			continue
		}
		if n, err := strconv.ParseInt(secs, 10, 64); err == nil && time.Duration(n)*time.Second >= limit {
			r.cancel(fmt.Errorf("the restore waited %s for a lock held by another session of the target database (pid %s): end that session or restore into a database nobody else uses",
				time.Duration(n)*time.Second, pids))
			return
		}
	}
}

// Errors picks pg_restore's error lines, with their indented continuations, out of what it
// printed: the SQL it echoes after a failed statement ("Command was: ...") can be many lines
// long and would push the error itself out of the last few.
func Errors(stderr string) string {
	var picked []string
	inError := false
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		switch {
		case strings.HasPrefix(line, "pg_restore: error:"):
			inError = true
			picked = append(picked, line)
		case inError && strings.HasPrefix(line, "\t"):
			picked = append(picked, strings.TrimSpace(line))
		default:
			inError = false
		}
	}
	if len(picked) == 0 {
		return lastLines(stderr, 5)
	}
	return strings.Join(picked[:min(len(picked), 6)], " | ")
}

// countRate is the slowest rate at which a count is expected to scan a table's data: a count's
// deadline grows with the data it reads, up to countMax.
const (
	countRate = 10 << 20 // bytes a second
	countMax  = 24 * time.Hour
)

// countWithin is the deadline of a count scanning bytes. The sizes come from the manifest, which
// anyone with the uploader's key can write: a huge one must not make the wait endless.
func countWithin(bytes int64) time.Duration {
	secs := min(max(bytes, 0)/countRate, int64(countMax/time.Second)) // capped before it can overflow
	return ConnectTimeout + time.Minute + time.Duration(secs)*time.Second
}

// CountRows counts the rows of each table (those with a count, Rows >= 0) in the target: in up
// to jobs sessions at once, each one query over its share of the tables (dealt out by size,
// largest first), whose deadline grows with the data it scans.
func CountRows(ctx context.Context, o Options, tables []pgdump.Table, jobs int) ([]pgdump.Table, error) {
	var todo []int
	for i, t := range tables {
		if t.Rows >= 0 {
			todo = append(todo, i)
		}
	}
	slices.SortStableFunc(todo, func(a, b int) int { return cmp.Compare(tables[b].Bytes, tables[a].Bytes) })
	shares := make([][]int, min(max(jobs, 1), len(todo)))
	load := make([]int64, len(shares))
	for _, i := range todo {
		k := slices.Index(load, slices.Min(load))
		shares[k] = append(shares[k], i)
		load[k] += min(max(tables[i].Bytes, 0), countRate*int64(countMax/time.Second)) // no sum overflows
	}
	c := o.conn()
	counts := make([]int64, len(tables))
	g, gctx := errgroup.WithContext(ctx)
	for k, share := range shares {
		g.Go(func() error {
			var q []string
			for _, i := range share {
				q = append(q, fmt.Sprintf(`SELECT %d, count(*) FROM %s.%s`, i, quoteIdent(tables[i].Schema), quoteIdent(tables[i].Name)))
			}
			out, err := o.psqlWithin(gctx, c, "pgoffsite-"+o.name()+"-count", strings.Join(q, " UNION ALL "), countWithin(load[k]))
			if err != nil {
				return fmt.Errorf("pgrestore: count the rows of %d tables in the restored database: %w", len(share), err)
			}
			lines := strings.Split(out, "\n")
			if len(lines) != len(share) {
				return fmt.Errorf("pgrestore: count the rows of %d tables: %d answers", len(share), len(lines))
			}
			for _, l := range lines {
				a, b, _ := strings.Cut(l, "|")
				i, err1 := strconv.Atoi(a)
				n, err2 := strconv.ParseInt(b, 10, 64)
				if err1 != nil || err2 != nil || i < 0 || i >= len(tables) {
					return fmt.Errorf("pgrestore: count rows: unexpected answer %q", l)
				}
				counts[i] = n
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []pgdump.Table
	for _, i := range todo {
		out = append(out, pgdump.Table{Schema: tables[i].Schema, Name: tables[i].Name, Rows: counts[i]})
	}
	return out, nil
}

// SameCounts compares per-table row counts; got is what where holds. The error names every
// table that differs. A table of got whose rows were not counted (-1: read for its framing
// only) need only be there.
func SameCounts(want, got []pgdump.Table, where string) error {
	have := map[string]int64{}
	for _, t := range got {
		have[t.Schema+"."+t.Name] = t.Rows
	}
	var diffs []string
	for _, t := range want {
		name := t.Schema + "." + t.Name
		if t.Rows < 0 {
			continue // not COPY data: nothing to count
		}
		if n, ok := have[name]; !ok {
			diffs = append(diffs, name+" is missing")
		} else if n != t.Rows && n >= 0 {
			diffs = append(diffs, fmt.Sprintf("%s has %d rows, want %d", name, n, t.Rows))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("row counts of %s differ from the manifest's: %s", where, strings.Join(diffs, "; "))
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
