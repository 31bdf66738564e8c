package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T) *filestore.Store {
	t.Helper()
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *filestore.Store, key string, body []byte) {
	t.Helper()
	if err := s.Put(context.Background(), store.Object{Key: key, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func at(day, hour, min, sec int) time.Time {
	return time.Date(2026, 11, day, hour, min, sec, 0, time.UTC)
}

// --- Verifying one archive: real pg_dump archives, real pg_restore. ---

var (
	dumpOnce sync.Once
	dumpData []byte
)

// realDump is a compressed pg_dump -Fc archive of a real database, written to a pipe as
// Heroku's are: customers (100 rows) and orders (20 000 rows of md5 text, about 0.5 MB
// compressed).
func realDump(t *testing.T) ([]byte, *testenv.Postgres) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	dumpOnce.Do(func() {
		name, dsn := pg.CreateDB(t, "verify_src")
		pg.Exec(t, name, `
			CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
			CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, note text);
			INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 100) g;
			INSERT INTO orders (customer_id, note) SELECT 1 + g % 100, md5(g::text) || md5((-g)::text) FROM generate_series(1, 20000) g;`)
		dumpData = pg.Dump(t, dsn)
	})
	return dumpData, pg
}

// summary is what the job's streaming check finds in dump: the manifest's structure.
func summary(t *testing.T, dump []byte) pgdump.Summary {
	t.Helper()
	chk := pgdump.NewChecker(pgdump.Options{})
	if _, err := chk.Write(dump); err != nil {
		t.Fatal(err)
	}
	sum, err := chk.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

const dumpKey = "shop/DATABASE/2026/11/24/shop-DATABASE-b042-20261124T021507Z.dump"

// archived files dump and the manifest the job writes for it; edit changes the manifest first.
func archived(t *testing.T, s *filestore.Store, dump []byte, edit func(*catalog.Manifest)) {
	t.Helper()
	archivedAs(t, s, dump, summary(t, dump), edit)
}

// archivedAs files dump with a manifest recording sum as its structure.
func archivedAs(t *testing.T, s *filestore.Store, dump []byte, sum pgdump.Summary, edit func(*catalog.Manifest)) {
	t.Helper()
	h := sha256.Sum256(dump)
	m := catalog.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Addon: "postgresql-globular-83867",
		Backup: "b042", BackupFinishedAt: at(24, 2, 15, 7), Bytes: int64(len(dump)), SHA256: hex.EncodeToString(h[:]),
		Key: dumpKey, PgDump: sum.Header, Structure: &sum}
	if edit != nil {
		edit(&m)
	}
	blob, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, dumpKey, dump)
	put(t, s, catalog.ManifestKey(dumpKey), blob)
}

func wantErr(t *testing.T, res Result, want string) {
	t.Helper()
	if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Fatalf("verify: %v; want an error saying %q", res.Err, want)
	}
	t.Log(res.Err)
}

func TestArchiveGood(t *testing.T) {
	dump, _ := realDump(t)
	s := newStore(t)
	archived(t, s, dump, nil)
	// What `verify` does without --key: find it, then check it.
	k, err := Latest(context.Background(), s, "shop", "DATABASE_URL")
	if err != nil || k != dumpKey {
		t.Fatalf("Latest: %s, %v", k, err)
	}
	res := Archive(context.Background(), s, k, Options{})
	if res.Err != nil || res.Tables != 2 || res.Rows != 20100 || res.Restored || res.Manifest.Backup != "b042" {
		t.Fatalf("verify: %+v", res)
	}
}

func TestArchiveDamage(t *testing.T) {
	dump, _ := realDump(t)
	tests := []struct {
		name  string
		setup func(s *filestore.Store)
		want  string
	}{
		{"the manifest's sha256 does not match", func(s *filestore.Store) {
			archived(t, s, dump, func(m *catalog.Manifest) { m.SHA256 = strings.Repeat("0", 64) })
		}, "differs from the manifest's " + strings.Repeat("0", 64) + ": the archive was altered or damaged"},
		{"a byte of the archive changed", func(s *filestore.Store) {
			archived(t, s, dump, nil)
			b := bytes.Clone(dump)
			b[len(b)/2] ^= 0x40
			os.WriteFile(s.Location(dumpKey), b, 0o600)
		}, "SHA-256"},
		{"the archive is shorter than the manifest says", func(s *filestore.Store) {
			archived(t, s, dump, nil)
			os.WriteFile(s.Location(dumpKey), dump[:len(dump)-1], 0o600)
		}, "the manifest says"},
		{"the manifest is missing", func(s *filestore.Store) {
			put(t, s, dumpKey, dump)
		}, "no manifest beside the dump (" + catalog.ManifestKey(dumpKey) + "): a backup run stopped between writing the dump and its manifest"},
		{"the manifest is not JSON", func(s *filestore.Store) {
			put(t, s, dumpKey, dump)
			put(t, s, catalog.ManifestKey(dumpKey), []byte("<html>"))
		}, "its manifest cannot be read, so the archive cannot be checked: manifest "},
		{"the manifest describes another archive", func(s *filestore.Store) {
			archived(t, s, dump, func(m *catalog.Manifest) { m.Key = strings.Replace(dumpKey, "b042", "b041", 2) })
		}, "the manifest describes another archive"},
		{"the manifest's row counts differ", func(s *filestore.Store) {
			archived(t, s, dump, ordersRows(19999))
		}, "public.orders has 20000 rows, want 19999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(s)
			wantErr(t, Archive(context.Background(), s, dumpKey, Options{}), tt.want)
		})
	}
}

// framingOnly marks orders as the job's check leaves a table it fell behind on: its framing
// read, its data not decompressed, no row count.
func framingOnly(m *catalog.Manifest) {
	editOrders(m, func(t *pgdump.Table) { t.Rows, t.Bytes, t.FramingOnly = -1, -1, true })
	m.Structure.OtherFramingOnly = 1
}

// ordersRows makes the manifest say that orders has n rows.
func ordersRows(n int64) func(*catalog.Manifest) {
	return func(m *catalog.Manifest) { editOrders(m, func(t *pgdump.Table) { t.Rows = n }) }
}

// editOrders changes what the manifest's structure says of the orders table, in a copy.
func editOrders(m *catalog.Manifest, edit func(*pgdump.Table)) {
	st := *m.Structure
	st.Tables = append([]pgdump.Table(nil), st.Tables...)
	for i := range st.Tables {
		if st.Tables[i].Name == "orders" {
			edit(&st.Tables[i])
		}
	}
	m.Structure = &st
}

// What the backup checked for framing only, verify decompresses and counts.
func TestArchiveFramingOnly(t *testing.T) {
	dump, _ := realDump(t)
	s := newStore(t)
	archived(t, s, dump, framingOnly)
	res := Archive(context.Background(), s, dumpKey, Options{})
	if res.Err != nil || res.Rows != 20100 || len(res.FramingOnly) != 1 || res.FramingOnly[0] != "public.orders" || res.OtherFramingOnly != 1 {
		t.Fatalf("verify: %+v", res)
	}

	// Damage inside that table's compressed data: the SHA-256 of the archive as published
	// matches (the job hashed the damaged bytes), only decompressing finds it.
	// orders, the biggest table, takes most of the file: its data spans the middle.
	damaged := bytes.Clone(dump)
	copy(damaged[len(dump)/2:len(dump)/2+64], make([]byte, 64))
	s = newStore(t)
	// The structure the job recorded: framing sound, orders' data not decompressed.
	archivedAs(t, s, damaged, summary(t, dump), framingOnly)
	wantErr(t, Archive(context.Background(), s, dumpKey, Options{}), "the archive is damaged")
}

func TestArchiveRestore(t *testing.T) {
	dump, pg := realDump(t)
	s := newStore(t)
	archived(t, s, dump, framingOnly)

	name, scratch := pg.CreateDB(t, "verify_scratch")
	res := Archive(context.Background(), s, dumpKey, Options{RestoreTo: scratch, PgBinDir: pg.BinDir})
	if res.Err != nil || !res.Restored {
		t.Fatalf("verify with a restore: %+v", res)
	}
	if got, err := pg.Query(name, "SELECT count(*) FROM orders"); err != nil || got != "20000" {
		t.Errorf("restored orders: %q %v", got, err)
	}

	// pg_restore's own failures, with the last lines it printed.
	busy, busyDSN := pg.CreateDB(t, "verify_busy")
	pg.Exec(t, busy, `CREATE TABLE orders (x int)`)
	res = Archive(context.Background(), s, dumpKey, Options{RestoreTo: busyDSN, PgBinDir: pg.BinDir})
	wantErr(t, res, "pg_restore failed")
	wantErr(t, res, `relation "orders" already exists`)
	if res.Restored {
		t.Error("a failed restore reported as restored")
	}

	res = Archive(context.Background(), s, dumpKey, Options{RestoreTo: pg.DSN("verify_no_such_db"), PgBinDir: pg.BinDir})
	wantErr(t, res, "pg_restore failed")
	wantErr(t, res, `database "verify_no_such_db" does not exist`)

	res = Archive(context.Background(), s, dumpKey, Options{RestoreTo: scratch, PgBinDir: t.TempDir()})
	wantErr(t, res, "start pg_restore")
}

// A restore into a scratch database where another session holds a lock the restore needs (here
// an open transaction that is creating the same table) fails after LockTimeout instead of
// waiting for that session for ever.
func TestArchiveRestoreDoesNotWaitForeverOnALock(t *testing.T) {
	dump, pg := realDump(t)
	s := newStore(t)
	archived(t, s, dump, framingOnly)
	name, scratch := pg.CreateDB(t, "verify_locked")

	blocker := exec.Command(pg.Bin("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-d", scratch, "-c",
		"BEGIN; CREATE TABLE public.orders (x int); SELECT pg_sleep(300);")
	blocker.Env = append(os.Environ(), "PGAPPNAME=verify_blocker")
	var blockerOut testenv.Output
	blocker.Stdout, blocker.Stderr = &blockerOut, &blockerOut
	if err := blocker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blocker.Process.Kill(); blocker.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := pg.Query(name, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'verify_blocker' AND wait_event = 'PgSleep'`)
		if err == nil && n == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the blocking session did not start: %q %v: %s", n, err, blockerOut.String())
		}
		time.Sleep(50 * time.Millisecond) // a poll interval
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang fails, not blocks
	defer cancel()
	start := time.Now()
	res := Archive(ctx, s, dumpKey, Options{RestoreTo: scratch, PgBinDir: pg.BinDir, LockTimeout: time.Second})
	wantErr(t, res, "pg_restore stopped: the restore waited")
	wantErr(t, res, "for a lock held by another session of the target database (pid ")
	if took := time.Since(start); took > 20*time.Second || ctx.Err() != nil {
		t.Errorf("the restore gave up after %s (ctx %v): want about the 1 s lock timeout and a poll", took, ctx.Err())
	}
}
