package verify

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// versioned is a store that keeps what an overwrite replaces (S3 with versioning on), with a
// clock the test moves.
func versioned(t *testing.T, dump []byte) (*memstore.Store, *time.Time) {
	t.Helper()
	clock := time.Date(2026, 11, 24, 2, 20, 0, 0, time.UTC)
	s := &memstore.Store{Versioned: true, Now: func() time.Time { return clock }}
	h := sha256.Sum256(dump)
	sum := summary(t, dump)
	m := catalog.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Backup: "b042", BackupFinishedAt: at(24, 2, 15, 7),
		Bytes: int64(len(dump)), SHA256: hex.EncodeToString(h[:]), Key: dumpKey, PgDump: sum.Header, Structure: &sum}
	blob, _ := json.Marshal(m)
	for _, o := range []struct {
		key  string
		body []byte
	}{{dumpKey, dump}, {catalog.ManifestKey(dumpKey), blob}} {
		if err := s.Put(context.Background(), store.Object{Key: o.key, Size: int64(len(o.body))}, bytes.NewReader(o.body)); err != nil {
			t.Fatal(err)
		}
	}
	clock = clock.Add(24 * time.Hour) // the overwrites come a day later
	return s, &clock
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// An archive overwritten with a plain PUT (what the uploader's keys can do where the store does
// not enforce If-None-Match) is told from the store's own record: the size it has now, the
// version it replaced, a dump newer than its manifest. verify says which key, what differs and
// which version is most likely the archive.
func TestArchiveOverwritten(t *testing.T) {
	dump, _ := realDump(t)
	ctx := context.Background()

	t.Run("other bytes, other size", func(t *testing.T) {
		s, _ := versioned(t, dump)
		s.Overwrite(dumpKey, []byte("PGDMP not really"))
		res := Archive(ctx, s, dumpKey, Options{})
		for _, want := range []string{"the archive has 16 bytes, the manifest says", dumpKey + " was overwritten: the store keeps 1 earlier version of it (v1: " + strconv.Itoa(len(dump)) + " bytes, ETag " + md5hex(dump) + ", written 2026-11-24 02:20:00 UTC)",
			"version v1 has the manifest's size: it is most likely the archive", "after its manifest"} {
			if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
				t.Errorf("verify: %v\nwant %q", res.Err, want)
			}
		}
	})
	t.Run("other bytes, same size", func(t *testing.T) {
		s, _ := versioned(t, dump)
		s.Overwrite(dumpKey, bytes.Repeat([]byte{'x'}, len(dump)))
		res := Archive(ctx, s, dumpKey, Options{})
		if res.Err == nil || (!strings.Contains(res.Err.Error(), "not a pg_dump custom-format archive") && !strings.Contains(res.Err.Error(), "SHA-256")) {
			t.Errorf("verify: %v, want the bytes refused", res.Err)
		}
		if f := strings.Join(res.Findings, "\n"); !strings.Contains(f, dumpKey+" was overwritten") {
			t.Errorf("findings %q", res.Findings)
		}
	})
	t.Run("the same bytes and manifest written again", func(t *testing.T) {
		// The bytes match, yet someone wrote with the uploader's keys: the verification's bytes
		// pass, the findings say so (pgoffsite verify fails on them; a restore goes on).
		s, _ := versioned(t, dump)
		s.Overwrite(dumpKey, dump)
		blob := s.Get(catalog.ManifestKey(dumpKey))
		s.Overwrite(catalog.ManifestKey(dumpKey), blob)
		res := Archive(ctx, s, dumpKey, Options{})
		f := strings.Join(res.Findings, "\n")
		if res.Err != nil || !strings.Contains(f, dumpKey+" was overwritten") || !strings.Contains(f, "the manifest of "+dumpKey+" was overwritten") ||
			!strings.Contains(f, "every version has the current one's size and ETag ("+md5hex(dump)+"): most likely the same bytes written again") {
			t.Errorf("verify: %v, findings %q", res.Err, res.Findings)
		}
	})
	t.Run("a store without versions", func(t *testing.T) {
		// A directory (or SFTP) keeps no versions: a dump newer than its manifest is what shows.
		s := newStore(t)
		archived(t, s, dump, nil)
		later := time.Now().Add(10 * time.Minute)
		if err := os.Chtimes(s.Location(dumpKey), later, later); err != nil {
			t.Fatal(err)
		}
		res := Archive(ctx, s, dumpKey, Options{})
		if f := strings.Join(res.Findings, "\n"); res.Err != nil || !strings.Contains(f, dumpKey+" was written ") || !strings.Contains(f, "after its manifest") {
			t.Errorf("verify: %v, findings %q", res.Err, res.Findings)
		}
		if untouched := Archive(ctx, s, dumpKey, Options{}); untouched.VersionsErr != nil {
			t.Errorf("a directory's listing reported %v", untouched.VersionsErr)
		}
	})
}
