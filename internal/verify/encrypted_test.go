package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// key is an age identity made by the real age-keygen: its file and what is in it.
type key struct {
	file, text, recipient string
	ids                   *agecrypt.Identities
}

func newKey(t *testing.T) key {
	t.Helper()
	k := testenv.NewAgeKey(t)
	ids, err := agecrypt.ParseIdentities(k.Text)
	if err != nil {
		t.Fatal(err)
	}
	return key{file: k.File, text: k.Text, recipient: k.Recipient, ids: ids}
}

// dumpSource yields one dump as the backup b042 of shop's DATABASE, as Heroku names it.
type dumpSource struct{ dump []byte }

func (d dumpSource) Open(ctx context.Context, t archive.Target) (archive.Backup, error) {
	return archive.Backup{Meta: catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b042", At: at(24, 2, 15, 7),
		CreatedAt: at(24, 2, 15, 0), FinishedAt: at(24, 2, 15, 7), Mode: "capture", Origin: catalog.Origin{Source: "pgbackups"}},
		Body: io.NopCloser(bytes.NewReader(d.dump)), Size: int64(len(d.dump))}, nil
}

// encryptedKey is where the job files dumpSource's backup, encrypted.
const encryptedKey = dumpKey + catalog.EncryptedSuffix

// archiveEncrypted has the real backup job archive dump into s, encrypted to recipients.
func archiveEncrypted(t *testing.T, s *filestore.Store, dump []byte, recipients ...string) catalog.Manifest {
	t.Helper()
	rs, err := agecrypt.ParseRecipients(strings.Join(recipients, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := &archive.Job{Source: dumpSource{dump}, Destinations: []archive.Destination{{Name: "file", Store: s}}, Encrypt: rs,
		Version: "test", Log: zerolog.Nop(), Check: archive.CheckFull}
	res := j.Archive(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Key != encryptedKey {
		t.Fatalf("the job filed the archive at %s, want %s", res.Key, encryptedKey)
	}
	return readStoredManifest(t, s)
}

func readStoredManifest(t *testing.T, s *filestore.Store) catalog.Manifest {
	t.Helper()
	blob, err := os.ReadFile(s.Location(catalog.ManifestKey(encryptedKey)))
	if err != nil {
		t.Fatal(err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(blob, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeManifest(t *testing.T, s *filestore.Store, m catalog.Manifest) {
	t.Helper()
	blob, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Location(catalog.ManifestKey(encryptedKey)), blob, 0o600); err != nil {
		t.Fatal(err)
	}
}

// An encrypted archive is found like a plain one, decrypted while it streams with the right
// identity, and checked against both hashes; the real age command decrypts it by hand to the
// exact dump.
func TestArchiveEncrypted(t *testing.T) {
	dump, pg := realDump(t)
	k := newKey(t)
	s := newStore(t)
	m := archiveEncrypted(t, s, dump, k.recipient)

	if got, err := Latest(context.Background(), s, "shop", "DATABASE_URL"); err != nil || got != encryptedKey {
		t.Fatalf("Latest: %s, %v", got, err)
	}
	res := Archive(context.Background(), s, encryptedKey, Options{Identities: k.ids})
	if res.Err != nil || !res.Encrypted || res.Tables != 2 || res.Rows != 20100 {
		t.Fatalf("verify with the identity: %+v", res)
	}

	name, scratch := pg.CreateDB(t, "verify_enc")
	res = Archive(context.Background(), s, encryptedKey, Options{Identities: k.ids, RestoreTo: scratch, PgBinDir: pg.BinDir})
	if res.Err != nil || !res.Restored {
		t.Fatalf("verify --restore-to with the identity: %+v", res)
	}
	if got, err := pg.Query(name, "SELECT count(*) FROM orders"); err != nil || got != "20000" {
		t.Errorf("restored orders: %q %v", got, err)
	}

	// By hand: age -d -i key.txt file.dump.age > file.dump.
	ageBin, _ := testenv.AgeBinary(t)
	plain, err := exec.Command(ageBin, "-d", "-i", k.file, s.Location(encryptedKey)).Output()
	if err != nil || !bytes.Equal(plain, dump) {
		t.Fatalf("age -d: %d bytes (%v), want the dump's %d", len(plain), err, len(dump))
	}
	if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != m.Encryption.PlaintextSHA256 {
		t.Error("the manifest's plaintext_sha256 is not the dump's")
	}
}

// Without an identity, or with one the archive is not encrypted to, verification fails before
// anything is restored, saying what the archive is encrypted to and what was tried.
func TestArchiveEncryptedNeedsItsIdentity(t *testing.T) {
	dump, pg := realDump(t)
	k, other := newKey(t), newKey(t)
	s := newStore(t)
	m := archiveEncrypted(t, s, dump, k.recipient)
	want := m.Encryption.Recipients[0].Fingerprint
	_, scratch := pg.CreateDB(t, "verify_noid")

	res := Archive(context.Background(), s, encryptedKey, Options{RestoreTo: scratch, PgBinDir: pg.BinDir})
	if !errors.Is(res.Err, ErrNoIdentity) {
		t.Fatalf("without an identity: %v", res.Err)
	}
	wantErr(t, res, "AGE_IDENTITY")
	wantErr(t, res, "--identity FILE")
	wantErr(t, res, want+" (X25519)")

	res = Archive(context.Background(), s, encryptedKey, Options{Identities: other.ids, RestoreTo: scratch, PgBinDir: pg.BinDir})
	if !errors.Is(res.Err, agecrypt.ErrWrongIdentity) {
		t.Fatalf("with a wrong identity: %v", res.Err)
	}
	wantErr(t, res, other.ids.Fingerprints()[0]) // the one tried
	wantErr(t, res, "encrypted to "+want)        // the one that would do
	if strings.Contains(res.Err.Error(), "AGE-SECRET-KEY") {
		t.Error("the error holds key text")
	}
	if res.Committed || res.Restored {
		t.Error("restored without decrypting")
	}
	if objs, err := pgrestore.Objects(context.Background(), pgrestore.Options{URL: scratch, PgBinDir: pg.BinDir}); err != nil || len(objs) != 0 {
		t.Errorf("the scratch database holds %v (%v), want nothing", objs, err)
	}
}

// A damaged ciphertext fails verification, and a restore of it never commits: age releases
// only authenticated chunks, and pg_restore's transaction is stopped when decryption fails
// (or the hashes differ at the end).
func TestArchiveEncryptedDamage(t *testing.T) {
	dump, pg := realDump(t)
	k := newKey(t)
	tests := []struct {
		name   string
		damage func(t *testing.T, s *filestore.Store, cipher []byte)
		want   string
	}{
		{"a ciphertext byte flipped", func(t *testing.T, s *filestore.Store, c []byte) {
			b := bytes.Clone(c)
			b[len(b)/2] ^= 0x01
			os.WriteFile(s.Location(encryptedKey), b, 0o600)
		}, "the encrypted archive is damaged, truncated or tampered with"},
		{"a ciphertext byte flipped, the manifest rewritten to match", func(t *testing.T, s *filestore.Store, c []byte) {
			b := bytes.Clone(c)
			b[len(b)-100] ^= 0x01
			os.WriteFile(s.Location(encryptedKey), b, 0o600)
			m := readStoredManifest(t, s)
			sum := sha256.Sum256(b)
			m.SHA256 = hex.EncodeToString(sum[:])
			writeManifest(t, s, m)
		}, "the encrypted archive is damaged, truncated or tampered with"},
		{"the ciphertext truncated", func(t *testing.T, s *filestore.Store, c []byte) {
			os.WriteFile(s.Location(encryptedKey), c[:len(c)-1000], 0o600)
		}, "the encrypted archive has "},
		{"the ciphertext truncated, the manifest rewritten to match", func(t *testing.T, s *filestore.Store, c []byte) {
			b := c[:len(c)-1000]
			os.WriteFile(s.Location(encryptedKey), b, 0o600)
			m := readStoredManifest(t, s)
			sum := sha256.Sum256(b)
			m.SHA256, m.Bytes = hex.EncodeToString(sum[:]), int64(len(b))
			writeManifest(t, s, m)
		}, "truncated"},
		{"the plaintext hash in the manifest differs", func(t *testing.T, s *filestore.Store, c []byte) {
			m := readStoredManifest(t, s)
			m.Encryption.PlaintextSHA256 = strings.Repeat("0", 64)
			writeManifest(t, s, m)
		}, "differs from the manifest's plaintext_sha256 " + strings.Repeat("0", 64)},
		{"the encrypted hash in the manifest differs", func(t *testing.T, s *filestore.Store, c []byte) {
			m := readStoredManifest(t, s)
			m.SHA256 = strings.Repeat("0", 64)
			writeManifest(t, s, m)
		}, "of the encrypted archive differs from the manifest's " + strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			archiveEncrypted(t, s, dump, k.recipient)
			cipher, err := os.ReadFile(s.Location(encryptedKey))
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, s, cipher)
			wantErr(t, Archive(context.Background(), s, encryptedKey, Options{Identities: k.ids}), tt.want)

			_, scratch := pg.CreateDB(t, "verify_encdmg")
			res := Archive(context.Background(), s, encryptedKey, Options{Identities: k.ids, RestoreTo: scratch, PgBinDir: pg.BinDir})
			wantErr(t, res, tt.want)
			if res.Committed || res.Restored {
				t.Error("a damaged archive was restored")
			}
			if objs, err := pgrestore.Objects(context.Background(), pgrestore.Options{URL: scratch, PgBinDir: pg.BinDir}); err != nil || len(objs) != 0 {
				t.Errorf("the scratch database holds %v (%v), want nothing", objs, err)
			}
		})
	}
}

// A backup archived plain and again encrypted (after ARCHIVE_RECIPIENTS was set) has a
// manifest for each form: the newest is the encrypted one, and each verifies against its own.
func TestLatestPlainAndEncryptedOfOneBackup(t *testing.T) {
	s := newStore(t)
	put(t, s, dumpKey, []byte("plain"))
	put(t, s, encryptedKey, []byte("encrypted"))
	if catalog.ManifestKey(dumpKey) == catalog.ManifestKey(encryptedKey) {
		t.Fatalf("both forms share the manifest %s", catalog.ManifestKey(dumpKey))
	}
	plain := catalog.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Backup: "b042", Key: dumpKey}
	blob, _ := json.Marshal(plain)
	put(t, s, catalog.ManifestKey(dumpKey), blob)
	got, err := Latest(context.Background(), s, "shop", "DATABASE_URL")
	if err != nil || got != encryptedKey {
		t.Errorf("Latest %s, %v; want the encrypted %s", got, err, encryptedKey)
	}
	// The plain one's manifest does not describe the encrypted dump.
	wrong, _ := json.Marshal(plain)
	put(t, s, catalog.ManifestKey(encryptedKey), wrong)
	res := Archive(context.Background(), s, encryptedKey, Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "says nothing of encryption") {
		t.Errorf("verify %s with a plain manifest: %v", encryptedKey, res.Err)
	}
}

// env:VAR targets find their encrypted archives too.
func TestLatestEnvEncrypted(t *testing.T) {
	s := newStore(t)
	const plain = "REPORTING_URL/REPORTING_URL/2026/11/24/REPORTING_URL-REPORTING_URL-dump-20261124T021507Z.dump"
	const newer = "REPORTING_URL/REPORTING_URL/2026/11/25/REPORTING_URL-REPORTING_URL-dump-20261125T021507Z.dump.age"
	put(t, s, plain, []byte("old"))
	put(t, s, newer, []byte("new"))
	if got, err := LatestEnv(context.Background(), s, "REPORTING_URL"); err != nil || got != newer {
		t.Fatalf("LatestEnv: %s, %v; want %s", got, err, newer)
	}
}
