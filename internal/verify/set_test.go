package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
	"github.com/pgoffsite/pgoffsite/internal/verify/settest"
)

// --- Sets (parallel dumps) read as one archive; restored in parallel sessions. ---

const setKey = "shop/DATABASE/2026/11/02/shop-DATABASE-p001-20261102T030000Z.dump"

var (
	setOnce   sync.Once
	setMade   settest.Set
	setSource string
)

// sourceSet is the set of a database of setSchema, made once, and the database's name.
func sourceSet(t *testing.T) (settest.Set, *testenv.Postgres, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	setOnce.Do(func() {
		name, dsn := pg.CreateDB(t, "set_src")
		pg.Exec(t, name, settest.Schema)
		setMade, setSource = settest.Dump(t, pg, dsn, setKey, settest.Parts), name
	})
	if setSource == "" {
		t.Fatal("the source set could not be made")
	}
	return setMade, pg, setSource
}

func TestSetRestoreIsIdentical(t *testing.T) {
	set, pg, source := sourceSet(t)
	want := settest.Fingerprint(t, pg, source)
	if !strings.Contains(want, "large object") || !strings.Contains(want, "counter: 1 rows") || !strings.Contains(want, `Weird ""Name"". t`) {
		t.Fatalf("the source lacks what the test is about:\n%s", want)
	}
	for _, jobs := range []int{2, 4} {
		s := newStore(t)
		set.Store(t, s)
		name, dsn := pg.CreateDB(t, "set_restored")
		res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: jobs})
		if res.Err != nil {
			t.Fatalf("jobs %d: %v", jobs, res.Err)
		}
		if !res.Restored || res.Tables < 6 {
			t.Errorf("jobs %d: restored %v, %d tables", jobs, res.Restored, res.Tables)
		}
		if got := settest.Fingerprint(t, pg, name); got != want {
			t.Errorf("jobs %d: the restored database differs from the source:\n--- source\n%s\n--- restored\n%s", jobs, want, got)
		}
	}
}

// emptied checks that the database holds nothing again, and that err says so.
func emptied(t *testing.T, pg *testenv.Postgres, name, dsn string, err error) {
	t.Helper()
	if !errors.Is(err, pgrestore.ErrEmptied) || !strings.Contains(err.Error(), "empty again") {
		t.Errorf("the error does not say the database was emptied: %v", err)
	}
	objs, oerr := pgrestore.Objects(context.Background(), pgrestore.Options{URL: dsn, PgBinDir: pg.BinDir})
	if oerr != nil || len(objs) > 0 {
		t.Errorf("the database is not empty after the failed restore: %v %v", objs, oerr)
	}
	if n, _ := pg.Query(name, "SELECT count(*) FROM pg_largeobject_metadata"); !strings.HasPrefix(n, "0") {
		t.Errorf("large objects left: %s", n)
	}
}

func TestSetTamperedPartFailsNamingIt(t *testing.T) {
	set, pg, _ := sourceSet(t)
	// The second part's bytes are replaced by the first part's, size and all: only the hash tells.
	tampered := set
	tampered.Streams = append([][]byte{}, set.Streams...)
	tampered.Streams[2] = set.Streams[1]
	m := set.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	parts[1].Bytes = int64(len(set.Streams[1]))
	m.Set = &catalog.Set{Parts: parts, Jobs: 2}
	tampered.Manifest = m

	s := newStore(t)
	tampered.Store(t, s)
	res := Archive(context.Background(), s, setKey, Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 2 ("+catalog.PartKey(setKey, 2)+")") || !strings.Contains(res.Err.Error(), "SHA-256") {
		t.Fatalf("verify of a set with a tampered part: %v", res.Err)
	}

	name, dsn := pg.CreateDB(t, "set_tampered")
	res = Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 2") {
		t.Fatalf("restore of a set with a tampered part: %v", res.Err)
	}
	emptied(t, pg, name, dsn, res.Err)
}

func TestSetBrokenPartEmptiesTheDatabase(t *testing.T) {
	set, pg, _ := sourceSet(t)
	// A part whose manifest entry matches its bytes but whose data pg_restore cannot load: the
	// first part's again, whose rows are then loaded twice (primary keys collide only in
	// post-data, so the duplicate rows fail the unique indexes).
	broken := set
	broken.Streams = append(append([][]byte{}, set.Streams...), set.Streams[1])
	m := set.Manifest
	p := m.Set.Parts[0]
	p.Key = catalog.PartKey(setKey, 3)
	m.Set = &catalog.Set{Parts: append(append([]catalog.Part{}, m.Set.Parts...), p), Jobs: 3}
	broken.Manifest = m

	s := newStore(t)
	broken.Store(t, s)
	name, dsn := pg.CreateDB(t, "set_broken")
	res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "pg_restore failed") {
		t.Fatalf("restore of a set with a part that breaks pg_restore: %v", res.Err)
	}
	emptied(t, pg, name, dsn, res.Err)
}

func TestSetManifestNamesOnlyItsParts(t *testing.T) {
	set, _, _ := sourceSet(t)
	m := set.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	parts[0].Key = "shop/DATABASE/2026/11/01/other.dump"
	m.Set = &catalog.Set{Parts: parts}
	bad := set
	bad.Manifest = m
	s := newStore(t)
	bad.Store(t, s)
	res := Archive(context.Background(), s, setKey, Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "names part 1") {
		t.Fatalf("a manifest naming another object as its part: %v", res.Err)
	}
}

// An encrypted set: each stream decrypted as it streams, both hashes of each checked; without an
// identity nothing is read.
func TestSetEncrypted(t *testing.T) {
	set, pg, source := sourceSet(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipients, err := agecrypt.ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agecrypt.ParseIdentities(id.String())
	if err != nil {
		t.Fatal(err)
	}
	enc := set.Encrypt(t, recipients)
	s := newStore(t)
	enc.Store(t, s)

	res := Archive(context.Background(), s, enc.Key, Options{})
	if !errors.Is(res.Err, ErrNoIdentity) {
		t.Errorf("without an identity: %v", res.Err)
	}
	name, dsn := pg.CreateDB(t, "set_encrypted")
	res = Archive(context.Background(), s, enc.Key, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2, Identities: ids})
	if res.Err != nil || !res.Restored {
		t.Fatalf("an encrypted set: %v", res.Err)
	}
	if got, want := settest.Fingerprint(t, pg, name), settest.Fingerprint(t, pg, source); got != want {
		t.Errorf("the restored database differs from the source")
	}
	// A part's plaintext hash that is not the manifest's fails, naming the part.
	bad := enc
	m := enc.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	parts[0].PlaintextSHA256 = strings.Repeat("0", 64)
	m.Set = &catalog.Set{Parts: parts}
	bad.Manifest = m
	s = newStore(t)
	bad.Store(t, s)
	res = Archive(context.Background(), s, enc.Key, Options{Identities: ids})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 1 (") || !strings.Contains(res.Err.Error(), "plaintext_sha256") {
		t.Errorf("a part whose plaintext differs: %v", res.Err)
	}
}

// A restore in several sessions checks for itself that the database is empty: emptying it
// after a failure must never drop what was there before.
func TestSetRestoreRefusesADatabaseThatIsNotEmpty(t *testing.T) {
	set, pg, _ := sourceSet(t)
	s := newStore(t)
	set.Store(t, s)
	name, dsn := pg.CreateDB(t, "set_busy")
	pg.Exec(t, name, `CREATE TABLE mine (x int); INSERT INTO mine VALUES (1)`)
	res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "table public.mine") || !strings.Contains(res.Err.Error(), "nothing was read or changed") {
		t.Fatalf("a set into a database that is not empty: %v", res.Err)
	}
	if n, err := pg.Query(name, "SELECT count(*) FROM mine"); err != nil || n != "1" {
		t.Errorf("the database's own table changed: %s %v", n, err)
	}
}

// A single stream staged in --scratch for pg_restore -j: the file is gone afterwards, also when
// the archive's check fails.
func TestScratchIsRemoved(t *testing.T) {
	dump, pg := realDump(t)
	sum := summary(t, dump)
	for _, tc := range []struct {
		name string
		body []byte
		ok   bool
	}{{"sound", dump, true}, {"damaged", append(append([]byte{}, dump[:len(dump)-10]...), make([]byte, 10)...), false}} {
		s := newStore(t)
		key := "shop/DATABASE/2026/11/02/shop-DATABASE-b001-20261102T030000Z.dump"
		put(t, s, key, tc.body)
		h := sha256.Sum256(dump)
		m, _ := json.Marshal(catalog.Manifest{ManifestVersion: 1, Key: key, Bytes: int64(len(dump)), SHA256: hex.EncodeToString(h[:]), Structure: &sum})
		put(t, s, catalog.ManifestKey(key), m)
		scratch := t.TempDir()
		_, dsn := pg.CreateDB(t, "scratch_"+tc.name)
		res := Archive(context.Background(), s, key, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2, Scratch: scratch})
		if (res.Err == nil) != tc.ok || (tc.ok && (!res.Restored || res.Staged != int64(len(dump)))) {
			t.Errorf("%s: restored %v, staged %d, %v", tc.name, res.Restored, res.Staged, res.Err)
		}
		if files, _ := os.ReadDir(scratch); len(files) != 0 {
			t.Errorf("%s: left in the scratch directory: %v", tc.name, files)
		}
	}
}

// A set's restore does not decompress in its checks what the manifest has counted: each
// pg_restore decompresses every byte, and the restored database's row counts are compared with
// the manifest's before the restore ends. So a count the manifest gets wrong fails that
// comparison and empties the database; damage inside compressed data the SHA-256 was computed
// over fails pg_restore itself, and empties it too.
func TestSetRestoreCountsFromTheManifest(t *testing.T) {
	set, pg, _ := sourceSet(t)
	miscounted := set
	m := set.Manifest
	parts := append([]catalog.Part{}, m.Set.Parts...)
	st := *parts[0].Structure
	st.Tables = append([]pgdump.Table(nil), st.Tables...)
	st.Tables[0].Rows++
	parts[0].Structure = &st
	m.Set = &catalog.Set{Parts: parts, Jobs: m.Set.Jobs, Snapshot: m.Set.Snapshot}
	miscounted.Manifest = m
	s := newStore(t)
	miscounted.Store(t, s)
	name, dsn := pg.CreateDB(t, "set_miscounted")
	res := Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	want := fmt.Sprintf("row counts of the restored database differ from the manifest's: %s.%s has %d rows, want %d",
		st.Tables[0].Schema, st.Tables[0].Name, st.Tables[0].Rows-1, st.Tables[0].Rows)
	if res.Err == nil || !strings.Contains(res.Err.Error(), want) || res.Committed || res.Restored {
		t.Fatalf("restore of a set whose manifest miscounts: %v (committed %v)", res.Err, res.Committed)
	}
	emptied(t, pg, name, dsn, res.Err)

	damaged := set
	damaged.Streams = append([][]byte{}, set.Streams...)
	part := bytes.Clone(set.Streams[1])
	part[len(part)/2] ^= 0x55
	damaged.Streams[1] = part
	m = set.Manifest
	parts = append([]catalog.Part{}, m.Set.Parts...)
	sum := sha256.Sum256(part)
	parts[0].SHA256 = hex.EncodeToString(sum[:])
	m.Set = &catalog.Set{Parts: parts, Jobs: m.Set.Jobs, Snapshot: m.Set.Snapshot}
	damaged.Manifest = m
	s = newStore(t)
	damaged.Store(t, s)
	name, dsn = pg.CreateDB(t, "set_damaged")
	res = Archive(context.Background(), s, setKey, Options{RestoreTo: dsn, PgBinDir: pg.BinDir, Jobs: 2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "pg_restore failed") || !strings.Contains(res.Err.Error(), "could not uncompress data") {
		t.Fatalf("restore of a set with damage inside a part's compressed data: %v", res.Err)
	}
	emptied(t, pg, name, dsn, res.Err)
}
