// Package verify proves archives restorable: it reads an archive back, checks its size and
// SHA-256 against the manifest written beside it, checks its whole structure without Postgres,
// and, given a scratch database, restores it with pg_restore and compares row counts.
package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// Source reads archives back.
type Source interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Location(key string) string
}

// Options configure a verification.
type Options struct {
	RestoreTo string // scratch database URL: restore there and compare row counts ("" = no restore)
	PgBinDir  string // where pg_restore and psql are ("" = PATH)
	// LockTimeout bounds each wait of the restore for a lock another session of the scratch
	// database holds; default 2 minutes. Without it a restore behind an open transaction waits
	// for ever (the archive itself sets lock_timeout = 0, so the server's setting cannot help).
	LockTimeout time.Duration
}

// pgEnv is the environment of pg_restore and psql: connecting may take 30 s, and the session is
// named so that the lock watch finds it.
func pgEnv(appName string) []string {
	return append(os.Environ(), "PGCONNECT_TIMEOUT=30", "PGAPPNAME="+appName)
}

// Result is what the verification of one archive found.
type Result struct {
	Key      string // the dump's key
	Manifest archive.Manifest
	Tables   int
	Rows     int64
	Restored bool
	// FramingOnly names the tables the backup checked for their framing only (the manifest says
	// so), and OtherFramingOnly counts such large objects and other data: a verification that
	// passed has decompressed them all.
	FramingOnly      []string
	OtherFramingOnly int
	Err              error
}

// Latest returns the dump key of the newest archive of database on app, database named as
// BACKUP_TARGETS names it: DATABASE_URL, DATABASE, HEROKU_POSTGRESQL_PINK[_URL], an add-on name,
// or any of them behind other-app::. Newest is by the backup's finish time, which Key writes into
// every key: one listing orders them all, with no object read per archive, and a dump whose
// manifest is missing still counts (and then fails its verification rather than being passed
// over for an older one, also when an add-on name is matched by the manifests beside it).
// Backups finished in the same second go by transfer number.
//
// The backup job resolves the name with Heroku and files the archive under the attachment Heroku
// answered with (archive.Key); verify runs without a Heroku key, so it matches the name the way
// Heroku resolves it: an attachment name, with or without _URL, matches the key's database
// segment; an add-on name matches the manifest's addon.
func Latest(ctx context.Context, src Source, app, database string) (string, error) {
	prefix := app + "/"
	keys, err := src.List(ctx, prefix)
	if err != nil {
		return "", fmt.Errorf("verify: list the archives of %s:%s: %w", app, database, err)
	}
	type dump struct {
		key  string
		info archive.KeyInfo
	}
	var dumps []dump
	manifests := map[string]bool{}
	for _, k := range keys {
		if strings.HasSuffix(k, ".json") {
			manifests[k] = true
		} else if info, ok := archive.ParseKey(k); ok && info.App == app {
			dumps = append(dumps, dump{k, info})
		}
	}
	sort.Slice(dumps, func(i, j int) bool {
		a, b := dumps[i].info, dumps[j].info
		if !a.FinishedAt.Equal(b.FinishedAt) {
			return a.FinishedAt.After(b.FinishedAt)
		}
		if a.Num != b.Num {
			return a.Num > b.Num
		}
		return dumps[i].key > dumps[j].key
	})

	segment, addon := names(database)
	orphans := map[string]string{} // database segment → its newest dump without a manifest
	for _, d := range dumps {
		if d.info.Database == segment {
			return d.key, nil
		}
		if addon == "" {
			continue
		}
		mk := archive.ManifestKey(d.key)
		if !manifests[mk] {
			if _, ok := orphans[d.info.Database]; !ok {
				orphans[d.info.Database] = d.key
			}
			continue
		}
		m, err := readManifest(ctx, src, mk)
		if err != nil {
			// Unreadable, it might be this add-on's newest: stop rather than pick an older one.
			return "", fmt.Errorf("verify: find the newest archive of %s:%s: %w", app, database, err)
		}
		if m.Addon == addon {
			// A newer dump beside it without a manifest is, by where the job filed it, most
			// likely this add-on's newest: verify that one, and fail, rather than an older one.
			if k, ok := orphans[d.info.Database]; ok {
				return k, nil
			}
			return d.key, nil
		}
	}
	var found []string
	for _, d := range dumps {
		if !slices.Contains(found, d.info.Database) {
			found = append(found, d.info.Database)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("verify: no archive of %s:%s under %s: no archive of %s at all (has the backup run with this ARCHIVE_URL?)",
			app, database, src.Location(prefix), app)
	}
	sort.Strings(found)
	return "", fmt.Errorf("verify: no archive of %s:%s under %s; %s has archives of %s",
		app, database, src.Location(prefix), app, strings.Join(found, ", "))
}

// LatestEnv returns the dump key of the newest archive of an env:VAR target: the job files
// them under VAR in place of app and database.
func LatestEnv(ctx context.Context, src Source, variable string) (string, error) {
	keys, err := src.List(ctx, variable+"/")
	if err != nil {
		return "", fmt.Errorf("verify: list the archives of env:%s: %w", variable, err)
	}
	var newest string
	var at time.Time
	for _, k := range keys {
		info, ok := archive.ParseKey(k)
		if !ok || info.App != variable || info.Database != archive.KeyDatabase(variable) {
			continue
		}
		if newest == "" || info.FinishedAt.After(at) || (info.FinishedAt.Equal(at) && k > newest) {
			newest, at = k, info.FinishedAt
		}
	}
	if newest == "" {
		return "", fmt.Errorf("verify: no archive of env:%s under %s (has the backup run with this ARCHIVE_URL?)", variable, src.Location(variable+"/"))
	}
	return newest, nil
}

// addonNameRE is the shape of a Heroku add-on name: lowercase, unlike an attachment's.
var addonNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// names gives the key segment a database name files its archives under when Heroku resolves it
// by attachment name, and the add-on name it may be instead ("" when it cannot be one).
// other-app::NAME names NAME as attached to other-app; the job files it under NAME on the app.
func names(database string) (segment, addon string) {
	if _, name, ok := strings.Cut(database, "::"); ok {
		database = name
	}
	segment = archive.KeyDatabase(strings.TrimSuffix(strings.ToUpper(database), "_URL"))
	if addonNameRE.MatchString(database) {
		addon = database
	}
	return segment, addon
}

// Archive verifies the dump at key against its manifest.
func Archive(ctx context.Context, src Source, key string, o Options) Result {
	res := Result{Key: key}
	res.Err = verify(ctx, src, key, o, &res)
	return res
}

func verify(ctx context.Context, src Source, key string, o Options, res *Result) error {
	m, err := readManifest(ctx, src, archive.ManifestKey(key))
	if err != nil {
		return fmt.Errorf("verify %s: its manifest cannot be read, so the archive cannot be checked: %w", src.Location(key), err)
	}
	res.Manifest = m
	if m.Structure != nil {
		res.FramingOnly, res.OtherFramingOnly = m.Structure.FramingOnly(), m.Structure.OtherFramingOnly
	}
	if m.Key != "" && !strings.HasSuffix(key, m.Key) && !strings.HasSuffix(m.Key, key) {
		return fmt.Errorf("verify %s: the manifest describes another archive (%s)", src.Location(key), m.Key)
	}
	body, size, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("verify %s: %w", src.Location(key), err)
	}
	defer body.Close()
	if size != m.Bytes {
		return fmt.Errorf("verify %s: the archive has %d bytes, the manifest says %d", src.Location(key), size, m.Bytes)
	}

	hash := sha256.New()
	chk := pgdump.NewChecker(pgdump.Options{})
	var restore *restoreRun
	sinks := []io.Writer{hash, chk}
	if o.RestoreTo != "" {
		restore, err = startRestore(ctx, o, src.Location(key))
		if err != nil {
			return err
		}
		sinks = append(sinks, restore.stdin)
	}
	n, copyErr := io.Copy(io.MultiWriter(sinks...), body)
	sum, chkErr := chk.Close()
	var restoreErr error
	if restore != nil {
		restoreErr = restore.wait()
	}
	switch {
	case copyErr != nil && restoreErr != nil:
		return fmt.Errorf("verify %s: %w", src.Location(key), restoreErr) // pg_restore stopped reading
	case copyErr != nil:
		return fmt.Errorf("verify %s: reading: %w", src.Location(key), copyErr)
	case n != m.Bytes:
		return fmt.Errorf("verify %s: read %d bytes, the manifest says %d", src.Location(key), n, m.Bytes)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("verify %s: SHA-256 %s differs from the manifest's %s: the archive was altered or damaged", src.Location(key), got, m.SHA256)
	}
	if chkErr != nil {
		return fmt.Errorf("verify %s: the archive is damaged: %w", src.Location(key), chkErr)
	}
	res.Tables = len(sum.Tables)
	for _, t := range sum.Tables {
		res.Rows += max(t.Rows, 0)
	}
	if m.Structure != nil {
		if err := sameCounts(m.Structure.Tables, sum.Tables, "the archive"); err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
	}
	if restore != nil {
		if restoreErr != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), restoreErr)
		}
		counted, err := countRows(ctx, o, sum.Tables)
		if err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		if err := sameCounts(sum.Tables, counted, "the restored database"); err != nil {
			return fmt.Errorf("verify %s: %w", src.Location(key), err)
		}
		res.Restored = true
	}
	return nil
}

func readManifest(ctx context.Context, src Source, key string) (archive.Manifest, error) {
	var m archive.Manifest
	body, _, err := src.Open(ctx, key)
	if err != nil {
		return m, fmt.Errorf("read manifest %s: %w", src.Location(key), err)
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, 16<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("manifest %s is not valid JSON: %w", src.Location(key), err)
	}
	return m, nil
}

// sameCounts compares per-table row counts; got is what where holds.
func sameCounts(want, got []pgdump.Table, where string) error {
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
		} else if n != t.Rows {
			diffs = append(diffs, fmt.Sprintf("%s has %d rows, want %d", name, n, t.Rows))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("row counts of %s differ from the manifest's: %s", where, strings.Join(diffs, "; "))
	}
	return nil
}

type restoreRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	cancel context.CancelCauseFunc // ends pg_restore, with why
	ctx    context.Context
	done   chan struct{} // the lock watch has ended
}

// startRestore runs pg_restore reading the archive from stdin: no temporary file.
func startRestore(ctx context.Context, o Options, location string) (*restoreRun, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	r := &restoreRun{cmd: exec.CommandContext(rctx, bin(o, "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "-d", o.RestoreTo),
		cancel: cancel, ctx: rctx, done: make(chan struct{})}
	app := fmt.Sprintf("pgoffsite-verify-%d-%d", os.Getpid(), time.Now().UnixNano())
	r.cmd.Env = pgEnv(app)
	r.cmd.Stderr = &r.stderr
	in, err := r.cmd.StdinPipe()
	if err != nil {
		cancel(nil)
		return nil, err
	}
	r.stdin = in
	if err := r.cmd.Start(); err != nil {
		cancel(nil)
		return nil, fmt.Errorf("verify %s: start pg_restore: %w", location, err)
	}
	go func() {
		defer close(r.done)
		watchLocks(rctx, o, app, cancel)
	}()
	return r, nil
}

// lockPoll is how often the lock watch looks at the restore's session.
const lockPoll = time.Second

// watchLocks ends the restore (through cancel) once its session has waited longer than
// o.LockTimeout for a lock another session holds, naming that session's pids; it returns when
// ctx ends. A failed look is not an error: the next one may work, and pg_restore's own errors
// are what matter then.
func watchLocks(ctx context.Context, o Options, app string, cancel context.CancelCauseFunc) {
	limit := o.LockTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	q := fmt.Sprintf(`SELECT extract(epoch FROM now() - query_start)::bigint || ' ' || array_to_string(pg_blocking_pids(pid), ',')
		FROM pg_stat_activity WHERE application_name = '%s' AND wait_event_type = 'Lock'`, app)
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(qctx, bin(o, "psql"), "-X", "-A", "-t", "-d", o.RestoreTo, "-c", q)
		cmd.Env = pgEnv(app + "-watch")
		out, err := cmd.Output()
		qcancel()
		secs, pids, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
		if err != nil || !ok {
			continue
		}
		if n, err := strconv.ParseInt(secs, 10, 64); err == nil && time.Duration(n)*time.Second >= limit {
			cancel(fmt.Errorf("the restore waited %s for a lock held by another session of the scratch database (pid %s): end that session or restore into a database nobody else uses",
				time.Duration(n)*time.Second, pids))
			return
		}
	}
}

func (r *restoreRun) wait() error {
	r.stdin.Close()
	err := r.cmd.Wait()
	stopped := context.Cause(r.ctx) // set when the lock watch ended the restore
	r.cancel(nil)
	<-r.done
	switch {
	case stopped != nil && stopped != context.Canceled && err != nil:
		return fmt.Errorf("pg_restore stopped: %w", stopped)
	case err != nil:
		return fmt.Errorf("pg_restore failed: %v: %s", err, restoreErrors(r.stderr.String()))
	}
	return nil
}

// restoreErrors picks pg_restore's error lines, with their indented continuations, out of what
// it printed: the SQL it echoes after a failed statement ("Command was: ...") can be many lines
// long and would push the error itself out of the last few.
func restoreErrors(stderr string) string {
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

// countRows counts the rows of each table in the restored database with psql.
func countRows(ctx context.Context, o Options, tables []pgdump.Table) ([]pgdump.Table, error) {
	var out []pgdump.Table
	for _, t := range tables {
		if t.Rows < 0 {
			continue
		}
		q := fmt.Sprintf(`SELECT count(*) FROM %s.%s`, quoteIdent(t.Schema), quoteIdent(t.Name))
		cmd := exec.CommandContext(ctx, bin(o, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", o.RestoreTo, "-c", q)
		cmd.Env = pgEnv("pgoffsite-verify")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("count rows of %s.%s in the restored database: %v: %s", t.Schema, t.Name, err, lastLines(string(b), 3))
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count rows of %s.%s: unexpected answer %q", t.Schema, t.Name, strings.TrimSpace(string(b)))
		}
		out = append(out, pgdump.Table{Schema: t.Schema, Name: t.Name, Rows: n})
	}
	return out, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func bin(o Options, name string) string {
	if o.PgBinDir != "" {
		return path.Join(o.PgBinDir, name)
	}
	return name
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
