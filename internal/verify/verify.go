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
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"

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
}

// Result is what the verification of one archive found.
type Result struct {
	Key      string // the dump's key
	Manifest archive.Manifest
	Tables   int
	Rows     int64
	Restored bool
	Err      error
}

// Latest returns the dump key of the newest archive of app (and database, when not empty,
// matched by its attachment name), found by the manifests' sortable keys.
func Latest(ctx context.Context, src Source, app, database string) (string, error) {
	keys, err := src.List(ctx, app+"/")
	if err != nil {
		return "", err
	}
	want := strings.TrimSuffix(strings.ToUpper(database), "_URL")
	var manifests []string
	for _, k := range keys {
		parts := strings.Split(k, "/")
		if !strings.HasSuffix(k, ".json") || len(parts) < 3 || (want != "" && parts[1] != want) {
			continue
		}
		manifests = append(manifests, k)
	}
	if len(manifests) == 0 {
		return "", fmt.Errorf("verify: no archive of %s:%s under %s", app, database, src.Location(app+"/"))
	}
	// Keys sort by date, then by the backup's finish time in the name.
	sort.Slice(manifests, func(i, j int) bool { return path.Base(manifests[i]) < path.Base(manifests[j]) })
	return strings.TrimSuffix(manifests[len(manifests)-1], ".json") + ".dump", nil
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
		return err
	}
	res.Manifest = m
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
		restore, err = startRestore(ctx, o, key)
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
		return m, fmt.Errorf("verify: read manifest %s: %w", src.Location(key), err)
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, 16<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("verify: manifest %s is not valid JSON: %w", src.Location(key), err)
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
}

// startRestore runs pg_restore reading the archive from stdin: no temporary file.
func startRestore(ctx context.Context, o Options, key string) (*restoreRun, error) {
	r := &restoreRun{cmd: exec.CommandContext(ctx, bin(o, "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "-d", o.RestoreTo)}
	r.cmd.Stderr = &r.stderr
	in, err := r.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	r.stdin = in
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("verify %s: start pg_restore: %w", key, err)
	}
	return r, nil
}

func (r *restoreRun) wait() error {
	r.stdin.Close()
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("pg_restore failed: %v: %s", err, lastLines(r.stderr.String(), 5))
	}
	return nil
}

// countRows counts the rows of each table in the restored database with psql.
func countRows(ctx context.Context, o Options, tables []pgdump.Table) ([]pgdump.Table, error) {
	var out []pgdump.Table
	for _, t := range tables {
		if t.Rows < 0 {
			continue
		}
		q := fmt.Sprintf(`SELECT count(*) FROM %s.%s`, quoteIdent(t.Schema), quoteIdent(t.Name))
		b, err := exec.CommandContext(ctx, bin(o, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", o.RestoreTo, "-c", q).CombinedOutput()
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
