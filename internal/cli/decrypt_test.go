package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// ageKey is an identity made by the real age-keygen: its file, its text, its public side.
type ageKey struct {
	file, text, recipient string
}

func newAgeKey(t *testing.T) ageKey {
	t.Helper()
	k := testenv.NewAgeKey(t)
	return ageKey{file: k.File, text: k.Text, recipient: k.Recipient}
}

// secretLine is the AGE-SECRET-KEY-1… line of the key.
func (k ageKey) secretLine() string {
	for _, l := range strings.Split(k.text, "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
			return l
		}
	}
	return k.text
}

// assertNoKey fails when any part of the identity is in out.
func (k ageKey) assertNoKey(t *testing.T, out string) {
	t.Helper()
	line := k.secretLine()
	if strings.Contains(out, line) || strings.Contains(strings.ToLower(out), strings.ToLower(line)) || strings.Contains(out, line[len(line)-20:]) {
		t.Error("the identity's text appears in the output")
	}
}

// dumpBackup yields a fixed dump as Heroku's backup b042 of shop's DATABASE.
type dumpBackup struct{ dump []byte }

func (d dumpBackup) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	at := time.Date(2026, 11, 24, 2, 15, 7, 0, time.UTC)
	return archive.Backup{Meta: catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b042", At: at, CreatedAt: at.Add(-time.Minute),
		FinishedAt: at, Mode: "capture", Origin: catalog.Origin{Source: "pgbackups"}},
		Body: io.NopCloser(bytes.NewReader(d.dump)), Size: int64(len(d.dump))}, nil
}

// encryptedArchive has the backup job archive a real pg_dump of dsn, encrypted to recipient,
// into a directory; it returns the directory (ARCHIVE_URL=file://DIR) and the dump's key.
func (w *world) encryptedArchive(dsn, recipient string) (dir, key string, dump []byte) {
	w.t.Helper()
	dump = w.pg.Dump(w.t, dsn)
	dir = w.t.TempDir()
	st, err := filestore.New(dir)
	if err != nil {
		w.t.Fatal(err)
	}
	rs, err := agecrypt.ParseRecipients(recipient)
	if err != nil {
		w.t.Fatal(err)
	}
	j := &archive.Job{Source: dumpBackup{dump}, Destinations: []archive.Destination{{Name: "file://" + dir, Store: st}},
		Encrypt: rs, Version: "test", Log: zerolog.Nop()}
	res := j.Archive(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		w.t.Fatal(res.Err)
	}
	if !strings.HasSuffix(res.Key, ".dump.age") {
		w.t.Fatalf("key %s", res.Key)
	}
	return dir, res.Key, dump
}

// fileEnv reads archives from dir, with no Heroku key and no identity.
func (w *world) fileEnv(dir string) map[string]string {
	env := w.env("shop")
	delete(env, "HEROKU_API_KEY")
	env["ARCHIVE_URL"] = "file://" + dir
	env["AGE_IDENTITY"] = ""
	return env
}

func withEnv(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (w *world) tables(db string) string {
	w.t.Helper()
	got, err := w.pg.Query(db, `SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		return err.Error()
	}
	return got
}

// verify of an encrypted archive: found as the newest, decrypted with AGE_IDENTITY or
// --identity FILE and checked, restored with --restore-to; without the identity or with another
// one it fails saying what it is encrypted to; a damaged ciphertext fails and restores nothing.
func TestVerifyEncrypted(t *testing.T) {
	w := newWorld(t)
	src, dsn := w.pg.CreateDB(t, "enc_src")
	w.pg.Exec(t, src, `CREATE TABLE orders (id serial PRIMARY KEY, note text);
		INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 1234) g;`)
	k, other := newAgeKey(t), newAgeKey(t)
	dir, key, _ := w.encryptedArchive(dsn, k.recipient)
	env := w.fileEnv(dir)
	run := func(env map[string]string, args ...string) (int, string) {
		t.Helper()
		code, out := w.run(env, args...)
		k.assertNoKey(t, out)
		other.assertNoKey(t, out)
		return code, out
	}
	rs, _ := agecrypt.ParseRecipients(k.recipient)
	fp := rs.Describe()[0].Fingerprint

	code, out := run(env, "verify")
	if code != ExitFailed || !strings.Contains(out, "AGE_IDENTITY") || !strings.Contains(out, "--identity FILE") || !strings.Contains(out, fp) {
		t.Fatalf("verify without an identity: exit %d; want a failure naming AGE_IDENTITY, --identity and %s", code, fp)
	}
	code, out = run(withEnv(env, "AGE_IDENTITY", k.text), "verify")
	if code != ExitOK || !strings.Contains(out, "decrypted while streaming") || !strings.Contains(out, "encrypted=true") || !strings.Contains(out, "rows=1234") {
		t.Fatalf("verify with AGE_IDENTITY: exit %d", code)
	}
	scratch, scratchDSN := w.pg.CreateDB(t, "enc_scratch")
	code, out = run(env, "verify", "--identity", k.file, "--from", key, "--restore-to", scratchDSN)
	if code != ExitOK || !strings.Contains(out, "restored and counted") {
		t.Fatalf("verify --identity FILE --restore-to: exit %d", code)
	}
	if got, err := w.pg.Query(scratch, "SELECT count(*) FROM orders"); err != nil || got != "1234" {
		t.Errorf("restored orders: %q %v", got, err)
	}
	// --identity wins over AGE_IDENTITY.
	if code, _ := run(withEnv(env, "AGE_IDENTITY", other.text), "verify", "--identity", k.file); code != ExitOK {
		t.Errorf("--identity FILE with another AGE_IDENTITY: exit %d", code)
	}

	otherIDs, _ := agecrypt.ParseIdentities(other.text)
	code, out = run(withEnv(env, "AGE_IDENTITY", other.text), "verify")
	if code != ExitFailed || !strings.Contains(out, "no identity given can decrypt this archive") || !strings.Contains(out, otherIDs.Fingerprints()[0]) ||
		!strings.Contains(out, fp) {
		t.Errorf("verify with a wrong identity: exit %d", code)
	}
	// A bad identity is a configuration error naming where it came from, before anything is read.
	code, out = run(withEnv(env, "AGE_IDENTITY", k.recipient), "verify")
	if code != ExitUsage || !strings.Contains(out, "AGE_IDENTITY: agecrypt: identity line 1: this is a recipient") {
		t.Errorf("verify with a recipient as identity: exit %d", code)
	}
	code, out = run(env, "verify", "--identity", filepath.Join(t.TempDir(), "missing.txt"))
	if code != ExitUsage || !strings.Contains(out, "--identity ") || !strings.Contains(out, "cannot read the identity file") {
		t.Errorf("verify with a missing identity file: exit %d", code)
	}

	path := filepath.Join(dir, key)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, damaged := range map[string][]byte{
		"a flipped byte": func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 1; return b }(),
		"truncated":      good[:len(good)-300],
	} {
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		db, dbDSN := w.pg.CreateDB(t, "enc_damaged")
		code, out := run(withEnv(env, "AGE_IDENTITY", k.text), "verify", "--restore-to", dbDSN)
		if code != ExitFailed || !strings.Contains(out, "summary: FAILED") {
			t.Errorf("%s: verify exit %d", name, code)
		}
		if got := w.tables(db); got != "" {
			t.Errorf("%s: the scratch database holds tables %q after a failed verification", name, got)
		}
	}
	os.WriteFile(path, good, 0o600)
}

// restore --to postgres:// of an encrypted archive decrypts it into pg_restore: exact counts;
// without its identity nothing is restored.
func TestRestoreEncryptedToPostgres(t *testing.T) {
	w := newWorld(t)
	src, dsn := w.pg.CreateDB(t, "enc_src")
	w.pg.Exec(t, src, `CREATE TABLE customers (id serial PRIMARY KEY, name text);
		CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, note text);
		INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 50) g;
		INSERT INTO orders (customer_id, note) SELECT 1 + g % 50, md5(g::text) FROM generate_series(1, 3210) g;`)
	k := newAgeKey(t)
	dir, key, _ := w.encryptedArchive(dsn, k.recipient)
	env := w.fileEnv(dir)
	delete(env, "BACKUP_TARGETS")

	empty, emptyDSN := w.pg.CreateDB(t, "enc_none")
	code, out := w.run(env, "restore", "--from", key, "--to", emptyDSN)
	k.assertNoKey(t, out)
	if code != ExitFailed || !strings.Contains(out, "AGE_IDENTITY") || !strings.Contains(out, "nothing was restored") || w.tables(empty) != "" {
		t.Errorf("restore without an identity: exit %d, tables %q", code, w.tables(empty))
	}

	// A bad identity: a configuration error before anything is read.
	code, out = w.run(withEnv(env, "AGE_IDENTITY", k.recipient), "restore", "--from", key, "--to", emptyDSN)
	if code != ExitUsage || !strings.Contains(out, "AGE_IDENTITY: ") || w.tables(empty) != "" {
		t.Errorf("restore with a public key as AGE_IDENTITY: exit %d", code)
	}

	into, intoDSN := w.pg.CreateDB(t, "enc_into")
	code, out = w.run(env, "restore", "--identity", k.file, "--from", key, "--to", intoDSN)
	k.assertNoKey(t, out)
	if code != ExitOK || !strings.Contains(out, "decrypting the archive while it streams into pg_restore") || !strings.Contains(out, "rows=3260") {
		t.Fatalf("restore of an encrypted archive: exit %d", code)
	}
	for table, want := range map[string]string{"orders": "3210", "customers": "50"} {
		if got, err := w.pg.Query(into, "SELECT count(*) FROM "+table); err != nil || got != want {
			t.Errorf("restored %s: %q %v, want %s", table, got, err, want)
		}
	}

	// Tampered: refused, the database as it was.
	path := filepath.Join(dir, key)
	good, _ := os.ReadFile(path)
	bad := bytes.Clone(good)
	bad[len(bad)-50] ^= 0x80
	os.WriteFile(path, bad, 0o600)
	damaged, damagedDSN := w.pg.CreateDB(t, "enc_tampered")
	w.pg.Exec(t, damaged, `CREATE TABLE sentinel (x int)`)
	code, out = w.run(withEnv(env, "AGE_IDENTITY", k.text), "restore", "--from", key, "--to", damagedDSN, "--clean", "--confirm", damaged)
	if code != ExitFailed || !strings.Contains(out, "the database is as it was") || w.tables(damaged) != "sentinel" {
		t.Errorf("restore of a tampered archive: exit %d, tables %q", code, w.tables(damaged))
	}
}

// restore --to app:DATABASE of an encrypted archive: Heroku could only download ciphertext, so
// the archive is decrypted here into pg_restore against the URL in the attachment's config var
// (read through the Platform API, never shown), replacing the archive's tables; Heroku is asked
// to restore nothing.
func TestRestoreEncryptedToHeroku(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	db, dsn := w.pg.CreateDB(t, "enc_heroku")
	w.pg.Exec(t, db, `CREATE TABLE orders (id serial PRIMARY KEY, note text);
		INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 2345) g;`)
	// The database's config var holds a password, as Heroku's do.
	const password = "H3roku-db-pa55word-7f3a"
	pwURL := w.pg.PasswordRole(t, "heroku_owner", password, db)
	w.pg.Exec(t, "postgres", `ALTER ROLE heroku_owner SUPERUSER`)
	w.sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", pwURL)
	k := newAgeKey(t)
	dir, key, _ := w.encryptedArchive(dsn, k.recipient)
	w.pg.Exec(t, db, `DELETE FROM orders WHERE id > 100; CREATE TABLE kept (x int)`) // the accident, after the backup

	env := w.env("")
	delete(env, "BACKUP_TARGETS")
	env["ARCHIVE_URL"] = "file://" + dir
	env["AGE_IDENTITY"] = ""
	run := func(env map[string]string, args ...string) (int, string) {
		t.Helper()
		code, out := w.run(env, args...)
		k.assertNoKey(t, out)
		if strings.Contains(out, password) || strings.Contains(out, pwURL) {
			t.Error("the database's URL or password appears in the output")
		}
		return code, out
	}
	before := len(w.sim.Requests())
	code, out := run(withEnv(env, "AGE_IDENTITY", k.text), "restore", "--from", key, "--to", "shop:DATABASE_URL")
	if code != ExitUsage || !strings.Contains(out, "--confirm shop") || len(w.sim.Requests()) != before {
		t.Fatalf("without --confirm: exit %d, %d requests", code, len(w.sim.Requests())-before)
	}
	code, out = run(env, "restore", "--from", key, "--to", "shop:DATABASE_URL", "--confirm", "shop")
	if code != ExitFailed || !strings.Contains(out, "AGE_IDENTITY") || len(w.sim.Requests()) != before {
		t.Fatalf("without an identity: exit %d, %d requests", code, len(w.sim.Requests())-before)
	}

	code, out = run(withEnv(env, "AGE_IDENTITY", k.text), "restore", "--from", key, "--to", "shop:DATABASE_URL", "--confirm", "shop")
	if code != ExitOK || !strings.Contains(out, "restore finished through pg_restore (the archive is encrypted)") ||
		!strings.Contains(out, "Heroku cannot restore it from a URL") {
		t.Fatalf("restore: exit %d", code)
	}
	if got, err := w.pg.Query(db, "SELECT count(*) FROM orders"); err != nil || got != "2345" {
		t.Errorf("orders after the restore: %q %v, want 2345", got, err)
	}
	if got := w.tables(db); got != "kept,orders" {
		t.Errorf("tables after the restore: %q; want the archive's replaced and the others kept", got)
	}
	readVars := false
	for _, r := range w.sim.Requests()[before:] {
		// Resolving the attachment is a POST that changes nothing; the rest are reads.
		if r.API != "platform" || (r.Method != "GET" && r.Path != "/actions/addon-attachments/resolve") {
			t.Errorf("asked Heroku %s %s %s; want only Platform API reads", r.API, r.Method, r.Path)
		}
		readVars = readVars || r.Path == "/apps/shop/config-vars"
	}
	if !readVars {
		t.Error("the database's URL was not read from the app's config vars")
	}
}

// The secrets that come with an identity scrub every line of the key, also of one that does not
// parse (agecrypt's tests show where it is read from).
func TestVerifyIdentityLoading(t *testing.T) {
	k := newAgeKey(t)
	if ids, _, err := loadIdentities("", ""); ids != nil || err != nil {
		t.Fatalf("nothing given: %v %v", ids, err)
	}
	ids, secrets, err := loadIdentities("", k.text)
	if err != nil || ids == nil {
		t.Fatal(err)
	}
	red := scrub.New(secrets...)
	if got := red.Scrub("key: " + k.secretLine() + " / " + strings.ToLower(k.secretLine())); strings.Contains(got, "SECRET-KEY-1") || strings.Contains(got, "secret-key-1") {
		t.Errorf("the redactor left the key: %s", got)
	}
	// Broken: the key's text is still a secret, and scrubbed from the error.
	cut := k.secretLine()[:40]
	_, secrets, err = loadIdentities("", cut)
	if err == nil || len(secrets) == 0 || strings.Contains(scrub.New(secrets...).Scrub(err.Error()), cut) {
		t.Errorf("a cut-short AGE_IDENTITY: %v", err)
	}
}
