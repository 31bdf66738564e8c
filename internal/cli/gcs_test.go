package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/gcsstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A backup to Google Cloud Storage (fake-gcs-server) through the backup command, then verify
// and a restore into an empty database from what it wrote.
func TestBackupToGCSThenVerifyAndRestore(t *testing.T) {
	w := newWorld(t)
	gcs := testenv.StartFakeGCS(t)
	bucket := gcs.CreateBucket(t, "cli")
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 321)
	env := w.env("shop")
	env["ARCHIVE_URL"] = "gs://" + bucket + "/pgbackups?endpoint=http://" + gcs.Host
	if code, out := w.run(env, "backup"); code != ExitOK || !strings.Contains(out, "gs://"+bucket+"/pgbackups") {
		t.Fatalf("backup: exit %d", code)
	}

	ctx := context.Background()
	st, err := gcsstore.Open(ctx, gcsstore.Options{Bucket: bucket, Prefix: "pgbackups", Endpoint: "http://" + gcs.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.List(ctx, "shop/DATABASE")
	if err != nil {
		t.Fatal(err)
	}
	read := func(key string) []byte {
		t.Helper()
		rc, _, err := st.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var m catalog.Manifest
	for _, k := range l.Keys() {
		if strings.HasSuffix(k, ".json") {
			if err := json.Unmarshal(read(k), &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m.Key == "" || catalog.ManifestKey(m.Key) == m.Key {
		t.Fatalf("no manifest among %v", l.Keys())
	}
	sum := sha256.Sum256(read(m.Key))
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		t.Errorf("the archive's SHA-256 differs from its manifest's")
	}

	if code, out := w.run(env, "verify"); code != ExitOK || !strings.Contains(out, m.Key) {
		t.Fatalf("verify: exit %d", code)
	}
	// The reader keeps the verification record status shows, as on S3.
	var rec catalog.Verification
	if err := json.Unmarshal(read(catalog.VerifiedKey(m.Key)), &rec); err != nil || rec.Key != m.Key {
		t.Errorf("the verification record: %+v %v", rec, err)
	}
	renv := w.restoreEnv()
	renv["ARCHIVE_URL"] = env["ARCHIVE_URL"]
	db, dsn := w.pg.CreateDB(t, "from_gcs")
	if code, out := w.run(renv, "restore", "--from", m.Key, "--to", dsn); code != ExitOK || !strings.Contains(out, "restore finished") {
		t.Fatalf("restore: exit %d", code)
	}
	if got, err := w.pg.Query(db, "SELECT count(*) FROM orders"); err != nil || got != "321" {
		t.Errorf("restored orders: %q %v", got, err)
	}
}
