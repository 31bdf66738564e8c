package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// The way back: an archive is restored into the simulated Heroku database (a real pg_restore
// into real Postgres) through a presigned URL.
func TestRestore(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	_, db := w.database("shop", "DATABASE", 777)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, _ := w.manifest("shop", "DATABASE")
	w.pg.Exec(t, db, "DELETE FROM orders; DELETE FROM customers;") // the accident

	env := w.env("")
	delete(env, "BACKUP_TARGETS")
	before := len(w.sim.Requests())
	code, out := w.run(env, "restore", "--from", m.Key, "--to", "shop:DATABASE_URL")
	if code != ExitUsage || !strings.Contains(out, "--confirm shop") || len(w.sim.Requests()) != before {
		t.Fatalf("without --confirm: exit %d, %d requests", code, len(w.sim.Requests())-before)
	}
	code, out = w.run(env, "restore", "--from", m.Key, "--to", "shop:DATABASE_URL", "--confirm", "shop")
	if code != ExitOK || !strings.Contains(out, "restore finished") {
		t.Fatalf("restore: exit %d", code)
	}
	if got, err := w.pg.Query(db, "SELECT count(*) FROM orders"); err != nil || got != "777" {
		t.Errorf("orders after restore: %q %v, want 777", got, err)
	}
	code, out = w.run(env, "restore", "--from", "shop/DATABASE/no-such.dump", "--to", "shop", "--confirm", "shop")
	if code != ExitFailed || !strings.Contains(out, "no archive at") || !strings.Contains(out, "check --from") {
		t.Errorf("missing archive: exit %d", code)
	}
}

// restoreEnv is the configuration restore --to postgres:// needs: the archive and its read
// credentials, no Heroku key, no targets.
func (w *world) restoreEnv() map[string]string {
	env := w.env("")
	delete(env, "BACKUP_TARGETS")
	delete(env, "HEROKU_API_KEY")
	return env
}

// The way back into any Postgres: the archive streams from MinIO into pg_restore, into an empty
// database; one that is not empty is refused, and changed only with --clean.
func TestRestoreToPostgres(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 777)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, _ := w.manifest("shop", "DATABASE")
	env := w.restoreEnv()
	count := func(db, table string) string {
		t.Helper()
		got, err := w.pg.Query(db, "SELECT count(*) FROM "+table)
		if err != nil {
			return err.Error()
		}
		return got
	}

	// Into an empty database: equal counts.
	empty, emptyDSN := w.pg.CreateDB(t, "restored")
	code, out := w.run(env, "restore", "--from", m.Key, "--to", emptyDSN)
	if code != ExitOK || !strings.Contains(out, "restore finished") || !strings.Contains(out, "rows=877") {
		t.Fatalf("into an empty database: exit %d", code)
	}
	if count(empty, "orders") != "777" || count(empty, "customers") != "100" {
		t.Errorf("restored counts: orders %s, customers %s", count(empty, "orders"), count(empty, "customers"))
	}

	// Into a database that is not empty: refused, before the archive is read, nothing changed.
	busy, busyDSN := w.pg.CreateDB(t, "busy")
	w.pg.Exec(t, busy, `CREATE TABLE sentinel (x int); INSERT INTO sentinel SELECT generate_series(1, 3);
		CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, note text); INSERT INTO orders VALUES (1, 1, 'mine');`)
	code, out = w.run(env, "restore", "--from", m.Key, "--to", busyDSN)
	if code != ExitFailed || !strings.Contains(out, "database "+busy+" is not empty") || !strings.Contains(out, "table public.sentinel") ||
		!strings.Contains(out, "--clean --confirm "+busy) || strings.Contains(out, "restore started") {
		t.Errorf("into a database that is not empty: exit %d", code)
	}
	if count(busy, "sentinel") != "3" || count(busy, "orders") != "1" {
		t.Errorf("the refused database changed: sentinel %s, orders %s", count(busy, "sentinel"), count(busy, "orders"))
	}

	// --clean needs --confirm DATABASE, checked before anything is done.
	code, out = w.run(env, "restore", "--from", m.Key, "--to", busyDSN, "--clean")
	if code != ExitUsage || !strings.Contains(out, "add --confirm "+busy) {
		t.Errorf("--clean without --confirm: exit %d", code)
	}
	// With --clean: the archive's tables are replaced, the others kept.
	code, out = w.run(env, "restore", "--from", m.Key, "--to", busyDSN, "--clean", "--confirm", busy)
	if code != ExitOK || !strings.Contains(out, "restore finished") {
		t.Fatalf("--clean: exit %d", code)
	}
	if count(busy, "orders") != "777" || count(busy, "customers") != "100" || count(busy, "sentinel") != "3" {
		t.Errorf("after --clean: orders %s, customers %s, sentinel %s", count(busy, "orders"), count(busy, "customers"), count(busy, "sentinel"))
	}
}

// A damaged archive fails the restore, and the database is left as it was: the restore runs in
// one transaction that commits only once the archive's size, SHA-256 and structure match.
func TestRestoreToPostgresDamagedArchive(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 5000)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, dump := w.manifest("shop", "DATABASE")
	key := "pgbackups/" + m.Key
	env := w.restoreEnv()
	tests := []struct {
		name, want string
		damage     func() []byte
	}{
		// A changed byte near the end, in orders' data: pg_restore itself may not notice.
		{"a byte changed near the end", "SHA-256", func() []byte {
			b := bytes.Clone(dump)
			b[len(b)-100] ^= 0x40
			return b
		}},
		{"the middle zeroed", "", func() []byte {
			b := bytes.Clone(dump)
			copy(b[len(b)/2:], make([]byte, 256))
			return b
		}},
		{"truncated", "the manifest says", func() []byte { return dump[:len(dump)*2/3] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.put(key, tt.damage())
			name, dsn := w.pg.CreateDB(t, "damaged")
			w.pg.Exec(t, name, `CREATE TABLE sentinel (x int); INSERT INTO sentinel VALUES (1)`)
			code, out := w.run(env, "restore", "--from", m.Key, "--to", dsn, "--clean", "--confirm", name)
			if code != ExitFailed || !strings.Contains(out, "restore FAILED") || !strings.Contains(out, tt.want) ||
				!strings.Contains(out, "the database is as it was") {
				t.Errorf("exit %d; want a failure saying %q and that the database is as it was", code, tt.want)
			}
			tables, err := w.pg.Query(name, `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`)
			if err != nil || tables != "sentinel" {
				t.Errorf("tables after the failed restore: %q %v, want only the sentinel", tables, err)
			}
		})
	}
	w.put(key, dump)

	// The manifest's row counts differ from the archive's: fails naming the table, rolled back.
	manifestKey := strings.TrimSuffix(key, ".dump") + ".json"
	good := w.object(manifestKey)
	var edited catalog.Manifest
	if err := json.Unmarshal(good, &edited); err != nil {
		t.Fatal(err)
	}
	st := *edited.Structure
	st.Tables = append([]pgdump.Table(nil), st.Tables...)
	for i := range st.Tables {
		if st.Tables[i].Name == "orders" {
			st.Tables[i].Rows = 4999
		}
	}
	edited.Structure = &st
	blob, err := json.Marshal(edited)
	if err != nil {
		t.Fatal(err)
	}
	w.put(manifestKey, blob)
	name, dsn := w.pg.CreateDB(t, "counts")
	code, out := w.run(env, "restore", "--from", m.Key, "--to", dsn)
	if code != ExitFailed || !strings.Contains(out, "public.orders has 5000 rows, want 4999") || !strings.Contains(out, "the database is as it was") {
		t.Errorf("manifest counts differ: exit %d", code)
	}
	if tables, err := w.pg.Query(name, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); err != nil || tables != "0" {
		t.Errorf("tables after the failed restore: %q %v", tables, err)
	}
	w.put(manifestKey, good)
}

// A wrong password is a clear error, and no output shows it; a bad URL or a missing --from is
// a usage error before anything is read.
func TestRestoreToPostgresMistakes(t *testing.T) {
	w := newWorld(t)
	env := w.restoreEnv()
	const password = "Corr3ct-h0rse-battery"
	name, _ := w.pg.CreateDB(t, "pw")
	right := w.pg.PasswordRole(t, "restore_pw", password, name)
	wrong := strings.Replace(right, password, "Wr0ng-pa55-value", 1)
	key := "shop/DATABASE/2026/11/24/shop-DATABASE-b042-20261124T021507Z.dump"
	noSecret := func(out string, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the output shows %q", s)
			}
		}
	}

	code, out := w.run(env, "restore", "--from", key, "--to", wrong)
	if code != ExitFailed || !strings.Contains(out, "password authentication failed") || !strings.Contains(out, "nothing was read or changed") {
		t.Errorf("wrong password: exit %d", code)
	}
	noSecret(out, password, "Wr0ng-pa55-value")

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"a URL that does not parse", []string{"--from", key, "--to", "postgres://u:Wr0ng-pa55-value@127.0.0.1:port/db"}, "--to is not a valid database URL"},
		{"no database", []string{"--from", key, "--to", "postgres://u:Wr0ng-pa55-value@127.0.0.1:5432"}, "--to names no database"},
		{"no --from", []string{"--to", right}, "--from KEY is required"},
		{"not a dump key", []string{"--from", strings.TrimSuffix(key, ".dump") + ".json", "--to", right}, "is not an archive's key"},
		{"--clean into Heroku", []string{"--from", key, "--to", "shop:DATABASE_URL", "--clean"}, "--clean is for --to postgres://"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := w.run(env, append([]string{"restore"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d; want %q", code, tt.want)
			}
			noSecret(out, password, "Wr0ng-pa55-value")
		})
	}
}
