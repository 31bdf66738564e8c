package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

const dumpPassword = "dump-pa55word-7c1e"

// shop makes a real database outside the simulator; its URL carries a password (the test server
// trusts local connections) that must appear nowhere.
func (w *world) shop(rows int) (name, url string) {
	name, _ = w.pg.CreateDB(w.t, "shop")
	w.pg.Exec(w.t, name, fmt.Sprintf(`
		CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
		CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, note text);
		INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 100) g;
		INSERT INTO orders (customer_id, note) SELECT 1 + g %% 100, md5(g::text) FROM generate_series(1, %d) g;`, rows))
	return name, fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", w.pg.User, dumpPassword, w.pg.Host, w.pg.Port, name)
}

// dumpArchive reads the only archive under prefix (its manifest and dump) and checks that they
// agree and that pg_restore restores the rows of database name.
func (w *world) dumpArchive(prefix, name string) (m catalog.Manifest, restored string) {
	w.t.Helper()
	var found []string
	for _, k := range w.keys() {
		if strings.HasPrefix(k, "pgbackups/"+prefix) && strings.HasSuffix(k, ".json") {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		w.t.Fatalf("manifests under %s: %v (all keys: %v)", prefix, found, w.keys())
	}
	blob := w.object(found[0])
	if err := json.Unmarshal(blob, &m); err != nil {
		w.t.Fatal(err)
	}
	dump := w.object("pgbackups/" + m.Key)
	sum := sha256.Sum256(dump)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(dump)) || m.Origin == nil || m.Origin.Source != "pg_dump" || m.Mode != "pg_dump" {
		w.t.Errorf("manifest %s", blob)
	}
	if bytes.Contains(blob, []byte(dumpPassword)) {
		w.t.Error("the password is in the manifest")
	}
	return m, w.restores(dump, name)
}

// restores restores dump into a fresh database, checks that it holds the rows of database name,
// and returns the fresh database.
func (w *world) restores(dump []byte, name string) (restored string) {
	w.t.Helper()
	restored, dsn := w.pg.CreateDB(w.t, "restored")
	cmd := exec.Command(w.pg.Bin("pg_restore"), "--no-owner", "--exit-on-error", "-d", dsn)
	cmd.Stdin = bytes.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	count := `SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders)`
	got, _ := w.pg.Query(restored, count)
	want, _ := w.pg.Query(name, count)
	if got != want || strings.TrimSpace(want) == "" {
		w.t.Errorf("restored rows %q, want %q", got, want)
	}
	return restored
}

func (w *world) noPassword(out string) {
	w.t.Helper()
	if strings.Contains(out, dumpPassword) {
		w.t.Error("the database password appears in the output")
	}
}

// BACKUP_TARGETS=env:SHOP_DATABASE_URL: no Heroku key, pg_dump streams a dump of over 50 MB
// into MinIO at unknown size (a multipart upload of several parts), the archive restores the
// same rows; verify works on it.
func TestBackupEnvTarget(t *testing.T) {
	w := newWorld(t)
	name, url := w.shop(50000)
	// Random bytes do not compress: the dump is as big as the table.
	w.pg.Exec(t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 52000) g;`)
	env := w.env("env:SHOP_DATABASE_URL")
	delete(env, "HEROKU_API_KEY")
	env["SHOP_DATABASE_URL"] = url
	code, out := w.run(env, "backup")
	w.noPassword(out)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, restored := w.dumpArchive("SHOP_DATABASE_URL/SHOP_DATABASE_URL/", name)
	if m.Origin.PgDump == nil || m.Origin.PgDump.EnvVar != "SHOP_DATABASE_URL" || m.Addon != "" || m.Bytes < 50e6 {
		t.Errorf("manifest %+v", m)
	}
	if got, _ := w.pg.Query(restored, "SELECT count(*) FROM blobs"); strings.TrimSpace(got) != "52000" {
		t.Errorf("restored %s blobs, want 52000", got)
	}
	if !strings.Contains(out, "summary: archived") || !strings.Contains(out, "database=SHOP_DATABASE_URL") {
		t.Errorf("summary missing")
	}
	// The start line tells how: pg_dump, whatever BACKUP_METHOD's and BACKUP_MODE's defaults say.
	if start := lineWith(out, "backup run started"); !strings.Contains(start, "method=pg_dump") || strings.Contains(start, "mode=") {
		t.Errorf("start line %q, want method=pg_dump and no mode", start)
	}
	if len(w.minio.IncompleteUploads(t, w.bucket)) != 0 {
		t.Error("incomplete multipart uploads left behind")
	}

	code, out = w.run(env, "verify")
	w.noPassword(out)
	if code != ExitOK || !strings.Contains(out, "verified") {
		t.Errorf("verify: exit %d", code)
	}
}

// check connects to an env: target as a backup would: the server's version, its size, pg_dump's
// version; no Heroku key needed.
func TestCheckEnvTarget(t *testing.T) {
	w := newWorld(t)
	_, url := w.shop(1000)
	env := w.env("env:SHOP_DATABASE_URL")
	delete(env, "HEROKU_API_KEY")
	env["SHOP_DATABASE_URL"] = url
	code, out := w.run(env, "check")
	w.noPassword(out)
	if code != ExitOK || !regexp.MustCompile(`ok    env:SHOP_DATABASE_URL: connected, PostgreSQL \d+\.\d+, [0-9.]+ MiB on disk .*; \S+ is pg_dump \d+`).MatchString(out) {
		t.Errorf("check: exit %d", code)
	}
	env["SHOP_DATABASE_URL"] = strings.Replace(url, "/shop", "/nope", 1)
	code, out = w.run(env, "check")
	w.noPassword(out)
	if code != ExitFailed || !strings.Contains(out, "FAIL  env:SHOP_DATABASE_URL:") || !strings.Contains(out, "fix: check the URL in SHOP_DATABASE_URL") {
		t.Errorf("check of a missing database: exit %d", code)
	}
}

// A Heroku target with BACKUP_METHOD=pg_dump: the URL comes from the attachment's config var,
// the archive is filed like a PGBackups one, and Heroku's backups endpoints are never called.
func TestBackupHerokuTargetWithPgDump(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	_, name := w.database("shop", "DATABASE", 20000)
	env := w.env("shop")
	env["BACKUP_METHOD"] = "pg_dump"
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, _ := w.dumpArchive("shop/DATABASE/", name)
	if m.App != "shop" || m.Database != "DATABASE" || m.Addon == "" || !strings.HasPrefix(m.Backup, "dump-") {
		t.Errorf("manifest %+v", m)
	}
	for _, r := range w.sim.Requests() {
		if r.API == "data" || r.API == "storage" {
			t.Errorf("Heroku's backups were asked: %s %s %s", r.API, r.Method, r.Path)
		}
	}
	if !strings.Contains(out, "pg_dump started") {
		t.Error("no pg_dump in the log")
	}
}

// A pg_dump older than the server is refused before anything is stored: exit 1, both versions
// named, nothing in the bucket. (It fails before the store is written, so it needs no
// unknown-size store.)
func TestBackupRefusesOldPgDump(t *testing.T) {
	w := newWorld(t)
	_, url := w.shop(10)
	stub := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := w.env("env:SHOP_DATABASE_URL")
	env["SHOP_DATABASE_URL"] = url
	env["PG_DUMP_PATH"] = stub
	code, out := w.run(env, "backup")
	w.noPassword(out)
	if code != ExitFailed || !strings.Contains(out, "pg_dump 11.22, older than the server's PostgreSQL") || !strings.Contains(out, "env:SHOP_DATABASE_URL") {
		t.Errorf("exit %d", code)
	}
	if keys := w.keys(); len(keys) != 0 {
		t.Errorf("objects stored: %v", keys)
	}
	code, out = w.run(env, "check")
	if code != ExitFailed || !strings.Contains(out, "FAIL  env:SHOP_DATABASE_URL:") || !strings.Contains(out, "older than the server's") {
		t.Errorf("check: exit %d", code)
	}
}

// A wrong database in the URL and an unreachable server: the target fails with the server's or
// psql's words, nothing is stored, and the password appears nowhere.
func TestBackupEnvConnectFailures(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct{ url, want string }{
		{fmt.Sprintf("postgres://u:%s@127.0.0.1:1/x?sslmode=disable", dumpPassword), "Connection refused"},
		{fmt.Sprintf("postgres://%s:%s@%s:%d/nope?sslmode=disable", w.pg.User, dumpPassword, w.pg.Host, w.pg.Port), "nope\\\" does not exist"},
	} {
		env := w.env("env:SHOP_DATABASE_URL")
		env["SHOP_DATABASE_URL"] = c.url
		code, out := w.run(env, "backup")
		w.noPassword(out)
		if code != ExitFailed || !strings.Contains(out, c.want) || !strings.Contains(out, "summary: FAILED") {
			t.Errorf("exit %d; want %q", code, c.want)
		}
		if keys := w.keys(); len(keys) != 0 {
			t.Errorf("objects stored: %v", keys)
		}
	}
}

// An env:VAR target whose variable is unset stops the run before anything is contacted (exit 2).
func TestBackupEnvTargetUnset(t *testing.T) {
	w := newWorld(t)
	code, out := w.run(w.env("env:SHOP_DATABASE_URL"), "backup")
	if code != ExitUsage || !strings.Contains(out, "SHOP_DATABASE_URL") || !strings.Contains(out, "not set") {
		t.Errorf("exit %d", code)
	}
}

// pg_dump killed mid-dump, and its server going away mid-dump (the connection cut by
// Toxiproxy): exit 1, the target failed with pg_dump's words, nothing in the bucket and no open
// multipart upload. The dump is slowed by a bandwidth limit so that it is surely mid-way.
func TestBackupPgDumpFailsMidway(t *testing.T) {
	w := newWorld(t)
	x := testenv.StartToxiproxy(t)
	name, _ := w.shop(150000)
	for _, c := range []struct {
		name string
		stop func(t *testing.T, p *testenv.Proxy, pidFile string)
		want string
	}{
		{"pg_dump killed", func(t *testing.T, p *testenv.Proxy, pidFile string) {
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Error(err)
				return
			}
			if out, err := exec.Command("kill", "-KILL", strings.TrimSpace(string(b))).CombinedOutput(); err != nil {
				t.Errorf("kill: %v %s", err, out)
			}
		}, "pg_dump was killed"},
		{"server gone", func(t *testing.T, p *testenv.Proxy, pidFile string) { p.SetEnabled(t, false) }, "pg_dump exited with status 1: pg_dump: error:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := x.Proxy(t, fmt.Sprintf("%s:%d", w.pg.Host, w.pg.Port))
			p.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 300}) // KB/s
			pidFile := filepath.Join(t.TempDir(), "pid")
			wrapper := filepath.Join(t.TempDir(), "pg_dump")
			script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = --version ] || echo $$ > %s\nexec %s \"$@\"\n", pidFile, w.pg.Bin("pg_dump"))
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			env := w.env("env:SHOP_DATABASE_URL")
			env["SHOP_DATABASE_URL"] = fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", w.pg.User, dumpPassword, p.Listen, name)
			env["PG_DUMP_PATH"] = wrapper
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				// Mid-dump: pg_dump's session is copying a table's rows.
				for range 300 {
					out, _ := w.pg.Query("postgres", fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgoffsite' AND query LIKE 'COPY%%'`, name))
					if strings.TrimSpace(out) == "1" {
						c.stop(t, p, pidFile)
						return
					}
					sleepBriefly()
				}
				t.Error("pg_dump never started copying")
			}()
			code, out := w.run(env, "backup")
			<-stopped
			w.noPassword(out)
			if code != ExitFailed || !strings.Contains(out, c.want) || !strings.Contains(out, "env:SHOP_DATABASE_URL") {
				t.Errorf("exit %d; want %q", code, c.want)
			}
			if keys := w.keys(); len(keys) != 0 {
				t.Errorf("objects stored: %v", keys)
			}
			if n := len(w.minio.IncompleteUploads(t, w.bucket)); n != 0 {
				t.Errorf("%d incomplete multipart uploads", n)
			}
		})
	}
}
