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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// dumpSetEnv is the environment of a PG_DUMP_JOBS=3 backup of the env: target SHOP_DATABASE_URL at url.
func (w *world) dumpSetEnv(url string) map[string]string {
	env := w.env("env:SHOP_DATABASE_URL")
	delete(env, "HEROKU_API_KEY")
	env["SHOP_DATABASE_URL"] = url
	env["PG_DUMP_JOBS"] = "3"
	return env
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// PG_DUMP_JOBS=3, encrypted, to MinIO and a directory: both hold the same set, its manifest
// (version 2) lists every part with the size and hash of what each destination holds, the real
// age decrypts every stream, and restored by hand (stream 0's schema, every stream's data, stream
// 0's indexes and constraints) they bring back the rows. check says how many sessions it takes.
func TestBackupSetEncryptedToTwoDestinations(t *testing.T) {
	w := newWorld(t)
	name, url := w.shop(60000)
	dir := t.TempDir()
	key := newAgeKey(t)
	env := w.dumpSetEnv(url)
	env["ARCHIVE_URL"] = "s3://" + w.bucket + "/pgbackups file://" + dir
	env["ARCHIVE_RECIPIENTS"] = key.recipient
	code, out := w.run(env, "backup")
	w.noPassword(out)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var mkey string
	for _, k := range w.keys() {
		if strings.HasSuffix(k, ".json") {
			mkey = k
		}
	}
	blob := w.object(mkey)
	if local, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(mkey, "pgbackups/"))); err != nil || !bytes.Equal(local, blob) {
		t.Errorf("the directory's manifest differs from the bucket's: %v", err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(blob, &m); err != nil {
		t.Fatal(err)
	}
	if m.ManifestVersion != catalog.SetManifestVersion || m.Set == nil || len(m.Set.Parts) != 2 || m.Encryption == nil || !strings.HasSuffix(m.Key, ".dump.age") {
		t.Fatalf("manifest %s", blob)
	}
	age, _ := testenv.AgeBinary(t)
	plain := map[string][]byte{}
	check := func(k string, bytes_ int64, sum string, plainBytes int64, plainSum string) {
		stored := w.object("pgbackups/" + k)
		local, err := os.ReadFile(filepath.Join(dir, k))
		if err != nil || !bytes.Equal(local, stored) {
			t.Errorf("%s: the directory's copy differs from the bucket's: %v", k, err)
		}
		if int64(len(stored)) != bytes_ || hexSHA(stored) != sum {
			t.Errorf("%s: %d bytes %s stored, manifest says %d %s", k, len(stored), hexSHA(stored), bytes_, sum)
		}
		p, err := exec.Command(age, "-d", "-i", key.file, filepath.Join(dir, k)).Output()
		if err != nil || int64(len(p)) != plainBytes || hexSHA(p) != plainSum {
			t.Errorf("%s: age -d: %v; %d bytes, manifest says %d", k, err, len(p), plainBytes)
		}
		plain[k] = p
	}
	check(m.Key, m.Bytes, m.SHA256, m.Encryption.PlaintextBytes, m.Encryption.PlaintextSHA256)
	for _, p := range m.Set.Parts {
		check(p.Key, p.Bytes, p.SHA256, p.PlaintextBytes, p.PlaintextSHA256)
	}
	restored, dsn := w.pg.CreateDB(t, "restored")
	restore := func(body []byte, section string) {
		cmd := exec.Command(w.pg.Bin("pg_restore"), "--no-owner", "--exit-on-error", "--section="+section, "-d", dsn)
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_restore --section=%s: %v\n%s", section, err, out)
		}
	}
	restore(plain[m.Key], "pre-data")
	restore(plain[m.Key], "data")
	for _, p := range m.Set.Parts {
		restore(plain[p.Key], "data")
	}
	restore(plain[m.Key], "post-data")
	count := `SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders)`
	got, _ := w.pg.Query(restored, count)
	want, _ := w.pg.Query(name, count)
	if got != want || want != "100/60000" {
		t.Errorf("restored %s, want %s", got, want)
	}
	if !strings.Contains(out, "set stored") || !strings.Contains(out, "parallel pg_dump started") {
		t.Error("the log does not describe the set")
	}

	delete(env, "ARCHIVE_RECIPIENTS")
	code, out = w.run(env, "check")
	if !strings.Contains(out, "PG_DUMP_JOBS=3: 3 pg_dump sessions share one exported snapshot") {
		t.Errorf("check (exit %d) does not say what PG_DUMP_JOBS costs", code)
	}
}

// sessionsOf are the pgoffsite sessions of database db.
func (w *world) sessionsOf(db string) string {
	out, _ := w.pg.Query("postgres", fmt.Sprintf(`SELECT string_agg(application_name, ',') FROM pg_stat_activity WHERE datname = '%s' AND application_name LIKE 'pgoffsite%%'`, db))
	return out
}

// noSessions fails t unless db's pgoffsite sessions are gone within 10 s.
func (w *world) noSessions(db string) {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; sleepBriefly() {
		s := w.sessionsOf(db)
		if s == "" {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("sessions left: %s", s)
			return
		}
	}
}

// waitPartCopying waits until part 01's pg_dump copies rows, and says whether it did in a minute.
func (w *world) waitPartCopying(db string) bool {
	for range 300 {
		out, _ := w.pg.Query("postgres", fmt.Sprintf(`SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgoffsite-part-01' AND query LIKE 'COPY%%'`, db))
		if strings.TrimSpace(out) == "1" {
			return true
		}
		sleepBriefly()
	}
	return false
}

// A part's pg_dump ended mid-dump by the server, and the server going away mid-dump (every
// connection cut by Toxiproxy): exit 1, nothing in the bucket, no open multipart upload, every
// pg_dump stopped and no session left on the server. The dump is slowed by a bandwidth limit so
// that it is surely mid-way.
func TestBackupSetFailsMidway(t *testing.T) {
	w := newWorld(t)
	x := testenv.StartToxiproxy(t)
	name, _ := w.shop(150000)
	for _, c := range []struct {
		name string
		stop func(t *testing.T, p *testenv.Proxy)
		want string
	}{
		{"part terminated", func(t *testing.T, p *testenv.Proxy) {
			w.pg.Exec(t, "postgres", fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgoffsite-part-01'`, name))
		}, "part 01 of the set failed, so none of it is stored"},
		{"server gone", func(t *testing.T, p *testenv.Proxy) { p.SetEnabled(t, false) }, "of the set failed, so none of it is stored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := x.Proxy(t, fmt.Sprintf("%s:%d", w.pg.Host, w.pg.Port))
			p.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 300}) // KB/s
			env := w.dumpSetEnv(fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", w.pg.User, dumpPassword, p.Listen, name))
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				if !w.waitPartCopying(name) {
					t.Error("part 01 never started copying")
					return
				}
				c.stop(t, p)
			}()
			code, out := w.run(env, "backup")
			<-stopped
			w.noPassword(out)
			if code != ExitFailed || !strings.Contains(out, c.want) {
				t.Errorf("exit %d; want %q", code, c.want)
			}
			if keys := w.keys(); len(keys) != 0 {
				t.Errorf("objects stored: %v", keys)
			}
			if n := len(w.minio.IncompleteUploads(t, w.bucket)); n != 0 {
				t.Errorf("%d incomplete multipart uploads", n)
			}
			w.noSessions(name)
		})
	}
}

// SIGTERM while a set's streams copy rows: the real binary stops every pg_dump and the snapshot's
// session and exits 143 within 20 s, leaving nothing in the bucket and no session on the server.
func TestBackupSetSIGTERM(t *testing.T) {
	w := newWorld(t)
	name, _ := w.shop(150000)
	p := testenv.StartToxiproxy(t).Proxy(t, fmt.Sprintf("%s:%d", w.pg.Host, w.pg.Port))
	p.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 300}) // KB/s
	env := w.dumpSetEnv(fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", w.pg.User, dumpPassword, p.Listen, name))
	cmd, out := startBinary(t, env, "backup")
	if !w.waitPartCopying(name) {
		t.Error("part 01 never started copying")
	}
	w.terminate(cmd, out)
	if keys := w.keys(); len(keys) != 0 {
		t.Errorf("objects left: %v", keys)
	}
	if n := len(w.openUploads()); n != 0 {
		t.Errorf("%d incomplete multipart uploads left", n)
	}
	w.noSessions(name)
}

// terminate sends the running binary SIGTERM, as Heroku stops a dyno, and fails the test unless
// it exits 143 within 20 s without a secret in its output.
func (w *world) terminate(cmd *exec.Cmd, out *testenv.Output) {
	w.t.Helper()
	stopped := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	elapsed := time.Since(stopped)
	w.t.Logf("output:\n%s", out.String())
	w.assertNoSecrets(out.String())
	if code := cmd.ProcessState.ExitCode(); code != ExitTerminated {
		w.t.Errorf("exit %d (%v), want %d", code, err, ExitTerminated)
	}
	if elapsed > 20*time.Second {
		w.t.Errorf("took %s to stop, want under 20 s", elapsed)
	}
}
