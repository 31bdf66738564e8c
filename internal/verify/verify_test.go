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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingSource counts the objects read, to show which lookups cost a read per archive.
type countingSource struct {
	Source
	mu    sync.Mutex
	opens int
}

func (c *countingSource) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	c.mu.Lock()
	c.opens++
	c.mu.Unlock()
	return c.Source.Open(ctx, key)
}

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

// backup is one Heroku backup as the job files it.
type backup struct {
	app, attachment, addon, name string
	finished                     time.Time
	noManifest                   bool
}

// key is where the job puts b: the real archive.Key of the transfer b names.
func (b backup) key() string {
	tr := heroku.Transfer{FromType: "pg_dump", ToType: "gof3r", FinishedAt: heroku.Time{Time: b.finished}}
	tr.Num, _ = heroku.ParseBackupName(b.name)
	if b.name[0] == 'a' {
		tr.Schedule = &heroku.TransferSchedule{UUID: "s"}
	}
	return archive.Key(pgbackups.Meta(heroku.Database{App: b.app, Attachment: b.attachment, AddonName: b.addon}, tr, pgbackups.ModeCapture))
}

// file stores a placeholder dump for b and, unless b has none, a manifest naming its add-on:
// enough to choose among archives, which reads nothing but the listing and manifests.
func file(t *testing.T, s *filestore.Store, bs ...backup) {
	t.Helper()
	for _, b := range bs {
		k := b.key()
		if got := b.app + "-" + b.attachment + "-" + b.name + "-"; !strings.Contains(k, got) {
			t.Fatalf("key %s does not name backup %s", k, b.name)
		}
		put(t, s, k, []byte("dump of "+b.name))
		if b.noManifest {
			continue
		}
		m, _ := json.Marshal(archive.Manifest{ManifestVersion: 1, App: b.app, Database: b.attachment, Addon: b.addon,
			Backup: b.name, BackupFinishedAt: b.finished, Key: k})
		put(t, s, archive.ManifestKey(k), m)
	}
}

func at(day, hour, min, sec int) time.Time {
	return time.Date(2026, 11, day, hour, min, sec, 0, time.UTC)
}

// The newest archive is the one whose backup finished last, whatever its name sorts as.
func TestLatestIsTheLastFinishedBackup(t *testing.T) {
	const addon = "postgresql-globular-83867"
	db := func(name string, finished time.Time) backup {
		return backup{app: "shop", attachment: "DATABASE", addon: addon, name: name, finished: finished}
	}
	tests := []struct {
		name    string
		backups []backup
		want    string
		targets []string
	}{
		{"b999 then b1000, different days", []backup{db("b999", at(23, 2, 0, 0)), db("b1000", at(24, 2, 0, 0))}, "b1000", nil},
		{"b999 then b1000, same day", []backup{db("b999", at(24, 2, 0, 0)), db("b1000", at(24, 3, 0, 0))}, "b1000", nil},
		{"b042 then a scheduled a007, same day", []backup{db("b042", at(24, 2, 0, 0)), db("a007", at(24, 9, 0, 0))}, "a007", nil},
		{"b042 then a scheduled a007, different days", []backup{db("b042", at(23, 23, 0, 0)), db("a007", at(24, 1, 0, 0))}, "a007", nil},
		{"a007 then b042", []backup{db("a007", at(24, 2, 0, 0)), db("b042", at(24, 3, 0, 0))}, "b042", nil},
		{"a later day before an earlier hour", []backup{db("b100", at(23, 23, 59, 59)), db("b099", at(24, 0, 0, 1))}, "b099", nil},
		{"same second: the higher transfer number", []backup{db("b041", at(24, 2, 0, 0)), db("b042", at(24, 2, 0, 0))}, "b042", nil},
		{"the newest dump lost its manifest: still the newest", []backup{db("b041", at(24, 2, 0, 0)),
			{app: "shop", attachment: "DATABASE", addon: addon, name: "b042", finished: at(24, 3, 0, 0), noManifest: true}}, "b042", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range [][]backup{tt.backups, {tt.backups[1], tt.backups[0]}} {
				s := newStore(t)
				file(t, s, order...)
				targets := tt.targets
				if targets == nil {
					targets = []string{"DATABASE_URL", addon}
				}
				for _, target := range targets {
					got, err := Latest(context.Background(), s, "shop", target)
					if err != nil {
						t.Fatalf("%s: %v", target, err)
					}
					if info, _ := archive.ParseKey(got); info.Backup != tt.want {
						t.Errorf("%s: Latest picked %s, want %s", target, got, tt.want)
					}
				}
			}
		})
	}
}

// Every way BACKUP_TARGETS names a database finds the archives the job filed for it.
func TestLatestMatchesEveryDatabaseName(t *testing.T) {
	s := newStore(t)
	file(t, s,
		backup{app: "shop", attachment: "DATABASE", addon: "postgresql-globular-83867", name: "b010", finished: at(22, 2, 0, 0)},
		backup{app: "shop", attachment: "DATABASE", addon: "postgresql-globular-83867", name: "b012", finished: at(23, 2, 0, 0)},
		// Newer, of another database of the same app: never the answer for DATABASE.
		backup{app: "shop", attachment: "HEROKU_POSTGRESQL_PINK", addon: "postgresql-curved-12345", name: "b013", finished: at(24, 2, 0, 0)},
		// Newer, of an app whose name begins with the same letters.
		backup{app: "shop-prod", attachment: "DATABASE", addon: "postgresql-flat-555", name: "b900", finished: at(25, 2, 0, 0)},
	)
	tests := []struct{ database, want string }{
		{"DATABASE_URL", "b012"},
		{"DATABASE", "b012"},
		{"postgresql-globular-83867", "b012"},
		{"other-app::DATABASE_URL", "b012"}, // the job files it under the attachment's name on shop
		{"other-app::DATABASE", "b012"},
		{"HEROKU_POSTGRESQL_PINK_URL", "b013"},
		{"HEROKU_POSTGRESQL_PINK", "b013"},
		{"postgresql-curved-12345", "b013"},
		{"shop::HEROKU_POSTGRESQL_PINK_URL", "b013"},
		{"other-app::postgresql-curved-12345", "b013"},
	}
	for _, tt := range tests {
		got, err := Latest(context.Background(), s, "shop", tt.database)
		if err != nil {
			t.Errorf("shop:%s: %v", tt.database, err)
			continue
		}
		if info, _ := archive.ParseKey(got); info.Backup != tt.want || info.App != "shop" {
			t.Errorf("shop:%s: Latest picked %s, want backup %s of shop", tt.database, got, tt.want)
		}
	}
	if got, err := Latest(context.Background(), s, "shop-prod", "DATABASE_URL"); err != nil || !strings.Contains(got, "b900") {
		t.Errorf("shop-prod:DATABASE_URL: %s, %v", got, err)
	}

	// Names that match nothing say what there is.
	for _, database := range []string{"HEROKU_POSTGRESQL_RED_URL", "postgresql-gone-1"} {
		_, err := Latest(context.Background(), s, "shop", database)
		if err == nil || !strings.Contains(err.Error(), "no archive of shop:"+database) ||
			!strings.Contains(err.Error(), "shop has archives of DATABASE, HEROKU_POSTGRESQL_PINK") {
			t.Errorf("shop:%s: %v", database, err)
		}
	}
	// A newer dump without a manifest under another attachment is not taken for the add-on's.
	file(t, s, backup{app: "shop", attachment: "HEROKU_POSTGRESQL_PINK", name: "b014", finished: at(24, 5, 0, 0), noManifest: true})
	if got, err := Latest(context.Background(), s, "shop", "postgresql-globular-83867"); err != nil || !strings.Contains(got, "b012") {
		t.Errorf("the add-on name beside another database's dump without a manifest: %s, %v", got, err)
	}

	if _, err := Latest(context.Background(), s, "cart", "DATABASE_URL"); err == nil || !strings.Contains(err.Error(), "no archive of cart at all") {
		t.Errorf("an app with no archives: %v", err)
	}
}

// An attachment name is matched on the listing alone; only an add-on name needs manifests read.
func TestLatestReadsManifestsOnlyForAddonNames(t *testing.T) {
	s := newStore(t)
	var bs []backup
	for i := range 20 {
		bs = append(bs, backup{app: "shop", attachment: "HEROKU_POSTGRESQL_PINK", addon: "postgresql-curved-12345",
			name: fmt.Sprintf("b%03d", 100+i), finished: at(24, 3, i, 0)})
	}
	bs = append(bs, backup{app: "shop", attachment: "DATABASE", addon: "postgresql-globular-83867", name: "b001", finished: at(20, 2, 0, 0)})
	file(t, s, bs...)
	src := &countingSource{Source: s}
	if _, err := Latest(context.Background(), src, "shop", "DATABASE_URL"); err != nil || src.opens != 0 {
		t.Errorf("DATABASE_URL: %v; %d objects read, want none", err, src.opens)
	}
	src.opens = 0
	got, err := Latest(context.Background(), src, "shop", "postgresql-globular-83867")
	if err != nil || !strings.Contains(got, "b001") || src.opens != 21 {
		t.Errorf("the add-on name: %s, %v; %d manifests read, want the 21 newest-first", got, err, src.opens)
	}
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
func archived(t *testing.T, s *filestore.Store, dump []byte, edit func(*archive.Manifest)) {
	t.Helper()
	archivedAs(t, s, dump, summary(t, dump), edit)
}

// archivedAs files dump with a manifest recording sum as its structure.
func archivedAs(t *testing.T, s *filestore.Store, dump []byte, sum pgdump.Summary, edit func(*archive.Manifest)) {
	t.Helper()
	h := sha256.Sum256(dump)
	m := archive.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Addon: "postgresql-globular-83867",
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
	put(t, s, archive.ManifestKey(dumpKey), blob)
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
			archived(t, s, dump, func(m *archive.Manifest) { m.SHA256 = strings.Repeat("0", 64) })
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
		}, "no manifest beside the dump (" + archive.ManifestKey(dumpKey) + "): a backup run stopped between writing the dump and its manifest"},
		{"the manifest is not JSON", func(s *filestore.Store) {
			put(t, s, dumpKey, dump)
			put(t, s, archive.ManifestKey(dumpKey), []byte("<html>"))
		}, "its manifest cannot be read, so the archive cannot be checked: manifest "},
		{"the manifest describes another archive", func(s *filestore.Store) {
			archived(t, s, dump, func(m *archive.Manifest) { m.Key = strings.Replace(dumpKey, "b042", "b041", 2) })
		}, "the manifest describes another archive"},
		{"the manifest's row counts differ", func(s *filestore.Store) {
			archived(t, s, dump, func(m *archive.Manifest) {
				st := *m.Structure
				st.Tables = append([]pgdump.Table(nil), st.Tables...)
				for i := range st.Tables {
					if st.Tables[i].Name == "orders" {
						st.Tables[i].Rows = 19999
					}
				}
				m.Structure = &st
			})
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
func framingOnly(m *archive.Manifest) {
	st := *m.Structure
	st.Tables = append([]pgdump.Table(nil), st.Tables...)
	for i := range st.Tables {
		if st.Tables[i].Name == "orders" {
			st.Tables[i].Rows, st.Tables[i].Bytes, st.Tables[i].FramingOnly = -1, -1, true
		}
	}
	st.OtherFramingOnly = 1
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
