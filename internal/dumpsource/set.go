package dumpsource

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// A parallel dump (PG_DUMP_JOBS=N) is N pg_dump processes reading one snapshot. One psql
// session opens a read-only repeatable-read transaction, exports its snapshot and lists the
// tables with their sizes in it; the tables' data is shared among the N streams by size, largest
// first, each to the stream with the least so far. Stream 0 is one of the N: it dumps everything
// (schema, sequences, large objects, the data of the tables no part carries) with the parts'
// tables' data left out, so that every pg_dump does about 1/N of the rows — with N-1 data
// streams, PG_DUMP_JOBS=2 would leave one stream reading all the data while the other writes
// only the schema. The session holds the transaction until every pg_dump has ended, and is
// closed at once when the set fails or the run is stopped.

// snapshotQueryTimeout bounds each statement of the snapshot session.
const snapshotQueryTimeout = 2 * time.Minute

// openSet starts a set: the snapshot session, then stream 0 and the parts. With fewer than two
// tables worth sharing the dump is a single stream, still from the snapshot.
func (s *Source) openSet(ctx context.Context, tools Tools, run dumpRun, db Database, args []string, b archive.Backup) (archive.Backup, error) {
	log := zerolog.Ctx(ctx)
	snap, id, err := openSnapshot(ctx, tools.Psql, run.conn, run.red)
	if err != nil {
		return archive.Backup{}, fmt.Errorf("dumpsource: %s: export a snapshot for PG_DUMP_JOBS=%d: %w", run.target, s.Jobs, err)
	}
	tables, err := snap.tables(ctx, s.tableFilter(db))
	if err != nil {
		snap.kill()
		return archive.Backup{}, fmt.Errorf("dumpsource: %s: list the tables to share among PG_DUMP_JOBS=%d streams: %w", run.target, s.Jobs, err)
	}
	shares := share(tables, s.Jobs)
	set := &setRun{snap: snap}
	set.left.Store(int32(len(shares)))
	start := func(i int, a []string) (*dump, error) {
		d, err := run.start(ctx, a, fmt.Sprintf("pgoffsite-part-%02d", i), set.ended)
		if err != nil {
			set.left.Add(-1)
			set.abandon()
			return nil, err
		}
		set.add(d)
		return d, nil
	}
	first := append(append([]string{}, args...), "--snapshot="+id)
	for _, sh := range shares[1:] {
		for _, t := range sh.tables {
			first = append(first, "--exclude-table-data="+t.pattern())
		}
	}
	body, err := start(0, first)
	if err != nil {
		return archive.Backup{}, err
	}
	b.Body = body
	if len(shares) == 1 {
		log.Info().Str("snapshot", id).Int("tables", len(tables)).Msg("pg_dump started as one stream: no table to share with other streams")
		return b, nil
	}
	b.Streams = &archive.Streams{Snapshot: id, Jobs: s.Jobs, Stop: set.stop}
	for i, sh := range shares[1:] {
		a := append(append([]string{}, args...), "--snapshot="+id, "--data-only")
		for _, t := range sh.tables {
			a = append(a, "--table="+t.pattern())
		}
		d, err := start(i+1, a)
		if err != nil {
			return archive.Backup{}, err
		}
		b.Streams.Parts = append(b.Streams.Parts, archive.Part{Body: d, Tables: sh.names()})
	}
	ev := log.Info().Str("snapshot", id).Int("streams", len(shares)).Int("tables", len(tables))
	for i, sh := range shares {
		ev = ev.Str(fmt.Sprintf("stream_%02d", i), fmt.Sprintf("%d tables, %s on disk", len(sh.tables), units.IEC(sh.bytes)))
	}
	ev.Msg("parallel pg_dump started")
	return b, nil
}

// setRun is a set's pg_dumps and the snapshot session that outlives them.
type setRun struct {
	snap  *snapshot
	left  atomic.Int32 // pg_dumps not yet ended
	mu    sync.Mutex
	dumps []*dump
}

func (r *setRun) add(d *dump) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dumps = append(r.dumps, d)
}

// ended is each pg_dump's end: after the last, the snapshot is no longer needed.
func (r *setRun) ended() {
	if r.left.Add(-1) <= 0 {
		r.snap.end()
	}
}

// stop kills every pg_dump of the set and the snapshot session: the transaction is gone with
// its connection.
func (r *setRun) stop() {
	r.mu.Lock()
	dumps := slices.Clone(r.dumps)
	r.mu.Unlock()
	for _, d := range dumps {
		d.stopNow()
	}
	r.snap.kill()
}

// abandon stops the set before the job has its streams, and reaps the pg_dumps it started.
func (r *setRun) abandon() {
	r.stop()
	r.mu.Lock()
	dumps := slices.Clone(r.dumps)
	r.mu.Unlock()
	for _, d := range dumps {
		d.Close()
	}
}

// table is a table whose data a stream carries.
type table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
}

// pattern is the table as a pg_dump pattern that matches it alone: both names in double quotes
// (inside which pg_dump's wildcards are plain characters), a double quote doubled.
func (t table) pattern() string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(t.Schema) + "." + q(t.Name)
}

// streamShare is one stream's tables.
type streamShare struct {
	tables []table
	bytes  int64
}

func (s streamShare) names() []string {
	out := make([]string, len(s.tables))
	for i, t := range s.tables {
		out[i] = t.Schema + "." + t.Name
	}
	return out
}

// share deals tables (largest first) to n streams, each to the one with the least bytes so far;
// on a tie a part before stream 0, which has the schema and the large objects to write besides.
// Streams left without a table are dropped, stream 0 always kept.
func share(tables []table, n int) []streamShare {
	sorted := slices.Clone(tables)
	slices.SortStableFunc(sorted, func(a, b table) int {
		if a.Bytes != b.Bytes {
			if a.Bytes > b.Bytes {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Schema+"."+a.Name, b.Schema+"."+b.Name)
	})
	shares := make([]streamShare, max(1, n))
	for _, t := range sorted {
		best := 0
		for i := len(shares) - 1; i >= 1; i-- {
			if best == 0 || shares[i].bytes <= shares[best].bytes {
				best = i
			}
		}
		if shares[0].bytes < shares[best].bytes {
			best = 0
		}
		shares[best].tables = append(shares[best].tables, t)
		shares[best].bytes += t.Bytes
	}
	out := shares[:1]
	for _, s := range shares[1:] {
		if len(s.tables) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// tableFilter is the SQL condition that keeps, of the ordinary tables, those a part may carry:
// not in a schema left out (heroku_ext for Heroku, PG_DUMP_EXCLUDE_SCHEMA) nor with data left
// out (PG_DUMP_EXCLUDE_TABLE_DATA). The patterns are read as pg_dump reads them, but an
// unqualified table pattern matches in every schema: a table it catches beyond pg_dump's stays
// with stream 0, where pg_dump itself applies the pattern, so matching too much is harmless.
func (s *Source) tableFilter(db Database) string {
	var conds []string
	schemas := slices.Clone(s.ExcludeSchema)
	if db.Heroku != nil {
		schemas = append(schemas, herokuExt)
	}
	for _, p := range schemas {
		parts := patternRegexps(p)
		conds = append(conds, "n.nspname ~ "+literal(parts[len(parts)-1]))
	}
	for _, p := range s.ExcludeTableData {
		parts := patternRegexps(p)
		c := "c.relname ~ " + literal(parts[len(parts)-1])
		if len(parts) > 1 {
			c = "(n.nspname ~ " + literal(parts[len(parts)-2]) + " AND " + c + ")"
		}
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		return "true"
	}
	return "NOT (" + strings.Join(conds, " OR ") + ")"
}

// patternRegexps reads a pg_dump pattern as its dot-separated names, each as an anchored regular
// expression: unquoted letters folded to lower case, * any run of characters, ? any one,
// double-quoted text as it is ("" a double quote).
func patternRegexps(p string) []string {
	var parts []string
	var cur strings.Builder
	quoted := false
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '"' && quoted && i+1 < len(rs) && rs[i+1] == '"':
			cur.WriteString(regexp.QuoteMeta(`"`))
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
			cur.WriteString(regexp.QuoteMeta(string(c)))
		case c == '.':
			parts = append(parts, "^("+cur.String()+")$")
			cur.Reset()
		case c == '*':
			cur.WriteString(".*")
		case c == '?':
			cur.WriteString(".")
		default:
			cur.WriteString(regexp.QuoteMeta(strings.ToLower(string(c))))
		}
	}
	return append(parts, "^("+cur.String()+")$")
}

// literal is s as an SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// tablesQuery lists, in one statement, the tables whose data may go to a part: ordinary tables
// and leaf partitions outside the system schemas, not temporary, not members of an extension
// (their data, if any, is the extension's to dump), with their size on disk (pg_table_size:
// heap and TOAST, without indexes, which the dump does not copy). One JSON line, so that no name
// can break the output's shape.
const tablesQuery = `SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname, 'bytes', pg_table_size(c.oid))), '[]')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND %s;`

// snapshot is the psql session holding the exported snapshot's transaction.
type snapshot struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *tail
	red    interface{ Scrub(string) string }
	exited chan struct{}
	once   sync.Once
}

// openSnapshot starts psql, opens the transaction and exports its snapshot; the session ends
// with ctx (killed) unless ended before.
func openSnapshot(ctx context.Context, psql string, c Conn, red interface{ Scrub(string) string }) (*snapshot, string, error) {
	cmd := exec.Command(psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", c.dsn)
	cmd.Env = c.envAs("pgoffsite-snapshot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	s := &snapshot{cmd: cmd, lines: make(chan string, 16), stderr: &tail{max: 8 << 10}, red: red, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	s.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", psql, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20) // the table list is one line
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		_ = cmd.Wait()
		close(s.exited)
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.kill()
		case <-s.exited:
		}
	}()
	id, err := s.ask(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();")
	if err != nil {
		s.kill()
		return nil, "", err
	}
	return s, id, nil
}

// tables lists the tables a part may carry (filter, tableFilter), in the snapshot.
func (s *snapshot) tables(ctx context.Context, filter string) ([]table, error) {
	out, err := s.ask(ctx, fmt.Sprintf(tablesQuery, filter))
	if err != nil {
		return nil, err
	}
	var ts []table
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		return nil, fmt.Errorf("the table list is not JSON: %w", err)
	}
	return ts, nil
}

// ask sends one statement and reads its one line of output, bounded by snapshotQueryTimeout.
func (s *snapshot) ask(ctx context.Context, sql string) (string, error) {
	if _, err := io.WriteString(s.stdin, sql+"\n"); err != nil {
		return "", s.failure(err)
	}
	t := time.NewTimer(snapshotQueryTimeout)
	defer t.Stop()
	select {
	case line, ok := <-s.lines:
		if !ok {
			<-s.exited
			return "", s.failure(errors.New("psql ended"))
		}
		return strings.TrimSpace(line), nil
	case <-t.C:
		return "", fmt.Errorf("the server did not answer within %s", snapshotQueryTimeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// failure is psql's own words when it has any.
func (s *snapshot) failure(err error) error {
	if words := strings.TrimSpace(s.red.Scrub(s.stderr.String())); words != "" {
		return errors.New(words)
	}
	return err
}

// end commits the read-only transaction and quits; a session that does not quit within a few
// seconds is killed, which ends the transaction as well.
func (s *snapshot) end() {
	s.once.Do(func() {
		_, _ = io.WriteString(s.stdin, "COMMIT;\n\\q\n")
		_ = s.stdin.Close()
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// kill ends the session at once: the server rolls the transaction back when the connection
// closes.
func (s *snapshot) kill() {
	s.once.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.stdin.Close()
		<-s.exited
	})
}
