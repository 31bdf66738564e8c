package pgrestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A set (a parallel dump: the dump and its parts, each its own archive) cannot be restored in
// one transaction: its streams arrive in several sessions at once. RestoreSet therefore restores
// only into an empty database, and on any failure — a session's, a stream's check, an
// interruption — stops every session and empties the database again.

// Open opens stream n of a set (0: the dump, which carries the schema) as the plaintext archive,
// checked as it streams: a Read returns an error instead of io.EOF when what was read is not
// what the manifest says (size, SHA-256, structure), so that the session reading it fails.
type Open func(ctx context.Context, n int) (io.ReadCloser, error)

// ErrEmptied ends the error of a parallel restore that failed: what it had restored was dropped.
var ErrEmptied = errors.New("what was restored was dropped: the database is empty again")

// MaxTOC bounds what is kept in memory of the dump's start (its table of contents) for the
// sessions that restore the schema's post-data part.
const MaxTOC = 64 << 20

// emptyTimeout bounds emptying the database after a failure: it also runs after SIGTERM, and the
// process must end within the 20 s a dyno is given.
const emptyTimeout = 12 * time.Second

// SetReport says what a parallel restore did.
type SetReport struct {
	TOCBytes int // the dump's start held in memory for the post-data sessions
	Sessions int // pg_restore sessions run
	Streams  int // streams restored
	Elapsed  time.Duration
}

// RestoreSet restores the streams 0..streams-1 of a set into o.URL, which must be empty, in jobs
// sessions: the dump's pre-data (its first read, whose start is kept in memory), then the data
// of every stream, jobs at once, each read straight from its Open, then the post-data —
// indexes and constraints split over the sessions, partition indexes attached, foreign keys
// split over the sessions, then the rest — each session fed the dump's table of contents from
// memory. Nothing is written to disk but the small lists of entries pg_restore -L reads. Then
// check, when given, compares what was restored with what should have been. On failure (check's
// too) the database is emptied again (ErrEmptied) or the error says that it could not be.
func RestoreSet(ctx context.Context, o Options, jobs, streams int, open Open, check func(context.Context) error) (SetReport, error) {
	start := time.Now()
	rep := SetReport{Streams: streams}
	err := o.orEmpty(ctx, func(ctx context.Context, c conn) error {
		if err := o.restoreSet(ctx, c, max(jobs, 1), streams, open, &rep); err != nil || check == nil {
			return err
		}
		return check(ctx)
	})
	rep.Elapsed = time.Since(start)
	return rep, err
}

// RestoreFile restores the archive at path, a local file, with pg_restore -j jobs into o.URL,
// which must be empty; on failure the database is emptied again, as by RestoreSet.
func RestoreFile(ctx context.Context, o Options, path string, jobs int) error {
	return o.orEmpty(ctx, func(ctx context.Context, c conn) error {
		return o.run(ctx, c, "pg_restore -j", []string{"-j", strconv.Itoa(max(jobs, 1)), path}, strings.NewReader(""), false)
	})
}

// ErrNotEmptied ends the error of a parallel restore that failed and whose database could not
// be emptied: it holds part of the archive.
var ErrNotEmptied = errors.New("the database holds part of the archive")

// orEmpty runs restore, and when it fails (or is interrupted) stops its sessions and drops what
// it made, so that the database is empty again, as it was.
func (o Options) orEmpty(ctx context.Context, restore func(context.Context, conn) error) error {
	c := o.conn()
	// Emptying drops everything outside the system schemas: only what this restore made may be
	// there, so the database must be empty before it starts.
	objs, err := Objects(ctx, o)
	if err != nil {
		return err
	}
	if len(objs) > 0 {
		return fmt.Errorf("pgrestore: the database is not empty (it holds %s): a restore in several sessions goes only into an empty database, which it can empty again on failure; nothing was read or changed: restore into a new database (createdb NEW)",
			strings.Join(objs, ", "))
	}
	exts, err := o.psql(ctx, c, "pgoffsite-"+o.name()+"-check", `SELECT string_agg(quote_literal(extname), ',') FROM pg_extension`)
	if err != nil {
		return fmt.Errorf("pgrestore: look into the target database: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	err = restore(rctx, c)
	cancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("pgrestore: the restore was interrupted")
	}
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), emptyTimeout)
	defer ecancel()
	if eerr := o.empty(ectx, c, exts); eerr != nil {
		return fmt.Errorf("%w; emptying the database after it failed: %w; %w: drop the database (dropdb) and create it again before restoring", err, eerr, ErrNotEmptied)
	}
	return fmt.Errorf("%w; %w", err, ErrEmptied)
}

func (o Options) restoreSet(ctx context.Context, c conn, jobs, streams int, open Open, rep *SetReport) error {
	toc, err := o.preData(ctx, c, open)
	rep.TOCBytes, rep.Sessions = len(toc), 1
	if err != nil {
		return err
	}
	// The data: stream 0's (its small tables, sequences, large objects) and every part's.
	var data []session
	for n := range streams {
		data = append(data, session{name: streamName(n), args: []string{"--section=data", "--single-transaction"},
			in: func(ctx context.Context) (io.ReadCloser, error) {
				r, err := open(ctx, n)
				if err != nil || n > 0 {
					return r, err
				}
				// The pre-data came from a first read of the dump: this one, checked whole,
				// must begin with the same bytes.
				return &samePrefix{ReadCloser: r, want: toc}, nil
			}})
	}
	if err := o.runAll(ctx, c, jobs, data); err != nil {
		return err
	}
	rep.Sessions += len(data)
	entries, err := o.postData(ctx, c, toc)
	if err != nil {
		return err
	}
	for _, phase := range postDataPhases(entries, jobs) {
		dir, err := os.MkdirTemp("", "pgoffsite-restore-lists-")
		if err != nil {
			return fmt.Errorf("pgrestore: %w", err)
		}
		var ss []session
		for i, list := range phase.lists {
			path := fmt.Sprintf("%s/%s-%d.list", dir, phase.name, i)
			if err := os.WriteFile(path, []byte(strings.Join(list, "\n")+"\n"), 0o600); err != nil {
				os.RemoveAll(dir)
				return fmt.Errorf("pgrestore: %w", err)
			}
			ss = append(ss, session{name: fmt.Sprintf("%s (%d entries)", phase.name, len(list)), args: []string{"-L", path},
				in: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(toc)), nil }})
		}
		err = o.runAll(ctx, c, jobs, ss)
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		rep.Sessions += len(ss)
	}
	return nil
}

// preData restores the dump's pre-data and returns the dump's start as far as pg_restore read
// it: the header and the table of contents, all the post-data sessions need. The rest of the
// dump is read, and its whole checked, by the data session of stream 0, which also checks that
// it starts with these bytes.
func (o Options) preData(ctx context.Context, c conn, open Open) ([]byte, error) {
	in, err := open(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var toc capture
	err = o.run(ctx, c, "the schema's pre-data", []string{"--section=pre-data", "--single-transaction"}, io.TeeReader(in, &toc), false)
	if err != nil {
		return nil, err
	}
	if toc.over {
		return nil, fmt.Errorf("pgrestore: the dump's table of contents is over %d MiB, more than a parallel restore keeps in memory: restore it with --jobs 1", MaxTOC>>20)
	}
	return toc.Bytes(), nil
}

// capture keeps what passes through it, up to MaxTOC.
type capture struct {
	bytes.Buffer
	over bool
}

func (c *capture) Write(p []byte) (int, error) {
	if c.Len()+len(p) > MaxTOC {
		c.over = true
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// streamName names the data session of stream n.
func streamName(n int) string {
	if n == 0 {
		return "the data of the dump"
	}
	return fmt.Sprintf("the data of part %d", n)
}

// samePrefix fails a read of the dump whose start differs from what an earlier read gave.
type samePrefix struct {
	io.ReadCloser
	want []byte
	off  int
}

func (s *samePrefix) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if s.off < len(s.want) {
		k := min(n, len(s.want)-s.off)
		if !bytes.Equal(p[:k], s.want[s.off:s.off+k]) {
			return n, errors.New("the dump changed between two reads of it: the store served different bytes for one key; find out who writes to it")
		}
		s.off += k
		if err == io.EOF && s.off < len(s.want) {
			return n, errors.New("the dump is shorter on a second read than on the first: the store served different bytes for one key; find out who writes to it")
		}
	}
	return n, err
}

// entry is one line of pg_restore -l: its text and its kind (INDEX, FK CONSTRAINT, ...).
type entry struct{ line, desc string }

// postData lists the dump's post-data entries.
func (o Options) postData(ctx context.Context, c conn, toc []byte) ([]entry, error) {
	cmd := exec.CommandContext(ctx, o.bin("pg_restore"), "-l", "--section=post-data")
	cmd.Stdin = bytes.NewReader(toc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pgrestore: list the dump's post-data: %v: %s", err, c.red.Scrub(Errors(stderr.String())))
	}
	var out []entry
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l == "" || strings.HasPrefix(l, ";") {
			continue
		}
		out = append(out, entry{line: l, desc: entryDesc(l)})
	}
	return out, nil
}

// entryDesc is an entry's kind in a line of pg_restore -l: "ID; CLASSOID OID KIND SCHEMA NAME
// OWNER", KIND being one or more words (FK CONSTRAINT, INDEX ATTACH).
func entryDesc(line string) string {
	_, rest, _ := strings.Cut(line, "; ")
	f := strings.Fields(rest)
	if len(f) < 3 {
		return ""
	}
	f = f[2:]
	for _, k := range []string{"FK CONSTRAINT", "INDEX ATTACH", "MATERIALIZED VIEW DATA", "EVENT TRIGGER", "DEFAULT ACL", "PUBLICATION TABLE", "ROW SECURITY"} {
		if strings.HasPrefix(strings.Join(f, " "), k+" ") {
			return k
		}
	}
	return f[0]
}

// phase is a step of the post-data: lists of entries restored at once, one session each.
type phase struct {
	name  string
	lists [][]string
}

// postDataPhases orders the post-data: indexes and the other constraints (primary keys,
// unique, check) spread over jobs sessions; the partitions' indexes attached to their parents'
// (foreign keys to a partitioned table need them); foreign keys spread over jobs sessions; then
// the rest (triggers, rules, policies, materialized views' data, comments) in one session, in
// the dump's order.
func postDataPhases(entries []entry, jobs int) []phase {
	spread := func(name string, es []string) phase {
		p := phase{name: name}
		for i, e := range es {
			if i < jobs {
				p.lists = append(p.lists, nil)
			}
			p.lists[i%jobs] = append(p.lists[i%jobs], e)
		}
		return p
	}
	var indexes, attach, fks, rest []string
	for _, e := range entries {
		switch e.desc {
		case "INDEX", "CONSTRAINT":
			indexes = append(indexes, e.line)
		case "INDEX ATTACH":
			attach = append(attach, e.line)
		case "FK CONSTRAINT":
			fks = append(fks, e.line)
		default:
			rest = append(rest, e.line)
		}
	}
	var out []phase
	for _, p := range []phase{spread("indexes and constraints", indexes), spread("index attachments", attach), spread("foreign keys", fks), spread("the rest of the post-data", rest)} {
		if len(p.lists) > 0 {
			out = append(out, p)
		}
	}
	for i := range out {
		if out[i].name == "index attachments" || out[i].name == "the rest of the post-data" {
			out[i].lists = [][]string{flatten(out[i].lists)} // order matters within them: one session
		}
	}
	return out
}

func flatten(lists [][]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// session is one pg_restore run of a parallel restore.
type session struct {
	name string
	args []string
	in   func(ctx context.Context) (io.ReadCloser, error)
}

// runAll runs the sessions, jobs at a time; the first failure stops the others and is returned.
func (o Options) runAll(ctx context.Context, c conn, jobs int, ss []session) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	todo := make(chan session)
	var wg sync.WaitGroup
	for range min(jobs, len(ss)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range todo {
				if err := o.runOne(ctx, c, s); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, s := range ss {
		select {
		case todo <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(todo)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		if err == context.Canceled {
			return fmt.Errorf("pgrestore: the restore was interrupted")
		}
		return err
	}
	return nil
}

func (o Options) runOne(ctx context.Context, c conn, s session) error {
	if ctx.Err() != nil {
		return nil // another session failed: its error is the one
	}
	in, err := s.in(ctx)
	if err != nil {
		return err
	}
	defer in.Close()
	return o.run(ctx, c, s.name, s.args, in, true)
}

// run is one pg_restore session reading the archive from in. With drain, what pg_restore did
// not read of in is read after it ends, so that a check at its end still fails the session.
func (o Options) run(ctx context.Context, c conn, name string, args []string, in io.Reader, drain bool) error {
	args = append([]string{"--no-owner", "--no-acl", "--exit-on-error"}, args...)
	cmd := exec.CommandContext(ctx, o.bin("pg_restore"), append(args, "-d", c.dsn)...)
	cmd.Env = c.env(fmt.Sprintf("pgoffsite-%s-%d", o.name(), os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("pgrestore: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgrestore: start pg_restore: %w", err)
	}
	_, copyErr := io.CopyBuffer(struct{ io.Writer }{stdin}, in, make([]byte, 1<<20))
	stdin.Close()
	waitErr := cmd.Wait()
	var readErr error
	if copyErr != nil && !errors.Is(copyErr, os.ErrClosed) && !isBrokenPipe(copyErr) {
		readErr = copyErr // reading the stream failed, or its check did
	} else if copyErr != nil && waitErr == nil && drain {
		_, readErr = io.Copy(io.Discard, in)
	}
	switch {
	case readErr != nil:
		return readErr // the stream's error names it
	case ctx.Err() != nil:
		return nil // stopped: the cause is elsewhere
	case waitErr != nil:
		return fmt.Errorf("%s: pg_restore failed: %v: %s", name, waitErr, c.red.Scrub(Errors(stderr.String())))
	}
	return nil
}

func isBrokenPipe(err error) bool {
	return strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "file already closed")
}

// emptyScript drops what a restore into an empty database made: every schema but public and
// the system's, public's tables, views, sequences, routines and types (not an extension's
// members), extensions that were not there before, and large objects.
const emptyScript = `DO $$DECLARE r record; BEGIN
	FOR r IN SELECT extname FROM pg_extension WHERE extname NOT IN (%s) LOOP
		EXECUTE format('DROP EXTENSION IF EXISTS %%I CASCADE', r.extname); END LOOP;
	FOR r IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'pg_toast')
		AND nspname NOT LIKE 'pg\_temp\_%%' AND nspname NOT LIKE 'pg\_toast\_temp\_%%' LOOP
		EXECUTE format('DROP SCHEMA IF EXISTS %%I CASCADE', r.nspname); END LOOP;
	FOR r IN SELECT c.oid::regclass AS name, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
		WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind
		FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') LOOP
		IF to_regclass(r.name::text) IS NOT NULL THEN EXECUTE format('DROP %%s IF EXISTS %%s CASCADE', r.kind, r.name); END IF; END LOOP;
	FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') LOOP
		EXECUTE format('DROP ROUTINE IF EXISTS %%s CASCADE', r.name); END LOOP;
	FOR r IN SELECT t.oid::regtype AS name FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
		AND t.typtype IN ('c', 'd', 'e', 'r', 'm') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e') LOOP
		EXECUTE format('DROP TYPE IF EXISTS %%s CASCADE', r.name); END LOOP;
	PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
END$$`

// empty drops what the restore made, first ending its sessions still on the database, and
// checks that the database is empty again.
func (o Options) empty(ctx context.Context, c conn, exts string) error {
	if exts == "" {
		exts = "''"
	}
	app := fmt.Sprintf("pgoffsite-%s-%d", o.name(), os.Getpid())
	if _, err := o.psql(ctx, c, app+"-empty", fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'`, app)); err != nil {
		return err
	}
	if _, err := o.psql(ctx, c, app+"-empty", fmt.Sprintf(emptyScript, exts)); err != nil {
		return err
	}
	objs, err := Objects(ctx, o)
	if err != nil {
		return err
	}
	if len(objs) > 0 {
		return fmt.Errorf("the database still holds %s", strings.Join(objs, ", "))
	}
	return nil
}
