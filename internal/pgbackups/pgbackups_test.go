package pgbackups

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// realDump is a real pg_dump 15 archive (uncompressed, written to a pipe as Heroku's are).
func realDump(t testing.TB) []byte {
	b, err := os.ReadFile("../archive/testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type Target = archive.Target
type Manifest = catalog.Manifest

var ManifestKey = catalog.ManifestKey

type fakeHeroku struct {
	db       heroku.Database
	backup   heroku.Transfer
	url      string
	captures int
	waitErr  error // Wait fails with it, leaving the transfer unfinished
	pollErr  error // Wait reports a poll failing with it before the capture finishes
	cancels  int
}

func (f *fakeHeroku) Cancel(ctx context.Context, db heroku.Database, t heroku.Transfer) error {
	f.cancels++
	return nil
}

func (f *fakeHeroku) Resolve(ctx context.Context, app, database string) (heroku.Database, error) {
	if database != "DATABASE_URL" {
		return heroku.Database{}, fmt.Errorf("heroku: resolve app=%s database=%s: Unknown database", app, database)
	}
	return f.db, nil
}

func (f *fakeHeroku) Capture(ctx context.Context, db heroku.Database) (heroku.Transfer, error) {
	f.captures++
	return f.backup, nil
}

func (f *fakeHeroku) Wait(ctx context.Context, db heroku.Database, t heroku.Transfer, timeout time.Duration, progress func(heroku.Transfer, error)) (heroku.Transfer, error) {
	if f.pollErr != nil {
		progress(t, f.pollErr)
	}
	progress(t, nil)
	if f.waitErr != nil {
		return heroku.Transfer{Num: t.Num}, f.waitErr
	}
	return t, nil
}

func (f *fakeHeroku) Latest(ctx context.Context, db heroku.Database) (heroku.Transfer, error) {
	return f.backup, nil
}

func (f *fakeHeroku) PublicURL(ctx context.Context, db heroku.Database, t heroku.Transfer) (heroku.SignedURL, error) {
	return heroku.SignedURL{URL: heroku.Secret(f.url), ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func newJob(t testing.TB, body []byte, mode string) (*archive.Job, *fakeHeroku, *memstore.Store, *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Method != http.MethodGet {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		http.ServeContent(w, r, "b.dump", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	ok := true
	finished := time.Date(2026, 11, 23, 2, 3, 4, 0, time.UTC)
	fh := &fakeHeroku{
		db: heroku.Database{App: "shop", Attachment: "DATABASE", AddonID: "a1", AddonName: "postgresql-x-1", BillingApp: "shop"},
		backup: heroku.Transfer{UUID: "u-1", Num: 42, FromType: "pg_dump", ToType: "gof3r", Succeeded: &ok,
			CreatedAt: heroku.Time{Time: finished.Add(-time.Minute)}, FinishedAt: heroku.Time{Time: finished}, ProcessedBytes: int64(len(body))},
		url: srv.URL + "/backup.dump?X-Amz-Signature=topsecret",
	}
	store := &memstore.Store{}
	var logs bytes.Buffer
	now := func() time.Time { return finished.Add(time.Hour) }
	src := &Source{Heroku: fh, Download: &fetch.Ranged{Options: fetch.Options{ChunkSize: 64 << 10}}, Mode: mode, MaxAge: 26 * time.Hour, Now: now}
	j := &archive.Job{Source: src, Destinations: []archive.Destination{{Name: "mem", Store: store}}, Version: "test", Log: zerolog.New(&logs), Now: now}
	return j, fh, store, &logs
}

func TestArchiveWritesDumpAndManifest(t *testing.T) {
	body := realDump(t)
	j, fh, store, logs := newJob(t, body, ModeCapture)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if fh.captures != 1 {
		t.Errorf("captures = %d, want 1", fh.captures)
	}
	wantKey := "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.dump"
	if res.Key != wantKey {
		t.Errorf("key = %q, want %q", res.Key, wantKey)
	}
	if !bytes.Equal(store.Get(wantKey), body) {
		t.Fatal("archived bytes differ from the download")
	}
	sum := sha256.Sum256(body)
	var m Manifest
	if err := json.Unmarshal(store.Get(ManifestKey(wantKey)), &m); err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(body)) || m.Backup != "b042" || m.TransferUUID != "u-1" ||
		m.Key != wantKey || m.PgDump.FormatVersion != "1.14.0" || m.Structure == nil || len(m.Structure.Tables) == 0 || m.PgoffsiteVersion != "test" {
		t.Errorf("manifest = %+v", m)
	}
	if strings.Contains(logs.String(), "topsecret") {
		t.Error("the signed URL's signature reached the log")
	}
}

func TestArchiveLatestRefusesOldBackup(t *testing.T) {
	j, fh, store, _ := newJob(t, realDump(t), ModeLatest)
	j.Source.(*Source).MaxAge = 30 * time.Minute
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "BACKUP_MAX_AGE") {
		t.Fatalf("err = %v, want BACKUP_MAX_AGE refusal", res.Err)
	}
	if fh.captures != 0 || store.Puts() != 0 {
		t.Errorf("captures=%d puts=%d, want 0 0", fh.captures, store.Puts())
	}
}

func TestArchiveTwiceIsAlreadyArchived(t *testing.T) {
	j, _, store, _ := newJob(t, realDump(t), ModeLatest)
	first := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	second := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if first.Err != nil || second.Err != nil {
		t.Fatal(first.Err, second.Err)
	}
	if !second.AlreadyArchived || first.AlreadyArchived {
		t.Errorf("already archived: first=%v second=%v", first.AlreadyArchived, second.AlreadyArchived)
	}
	if store.Len() != 2 {
		t.Errorf("%d objects, want dump + manifest", store.Len())
	}
}

func TestRunContinuesAfterAFailure(t *testing.T) {
	j, _, store, _ := newJob(t, realDump(t), ModeCapture)
	results := j.Run(context.Background(), []Target{{App: "shop", Database: "NOPE"}, {App: "shop", Database: "DATABASE_URL"}})
	if results[0].Err == nil || results[1].Err != nil {
		t.Fatalf("results: %v / %v", results[0].Err, results[1].Err)
	}
	if store.Len() != 2 {
		t.Errorf("%d objects, want 2", store.Len())
	}
	if !errors.Is(results[0].Err, results[0].Err) || !strings.Contains(results[0].Err.Error(), "database=NOPE") {
		t.Errorf("error does not name the target: %v", results[0].Err)
	}
}

func TestCaptureDeadlineCancelsOnHeroku(t *testing.T) {
	j, fh, store, _ := newJob(t, realDump(t), ModeCapture)
	fh.waitErr = errors.New("heroku: wait for backup b042: not finished after 6h0m0s (BACKUP_CAPTURE_TIMEOUT)")
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "cancelled on Heroku") || fh.cancels != 1 {
		t.Fatalf("err = %v, cancels = %d", res.Err, fh.cancels)
	}
	if store.Puts() != 0 {
		t.Error("something was stored")
	}
}

// A Heroku outage while a capture runs is logged as it happens, and the run goes on.
func TestCaptureOutageIsLogged(t *testing.T) {
	j, fh, _, logs := newJob(t, realDump(t), ModeCapture)
	fh.pollErr = errors.New("heroku: GET /client/v11/apps/shop/transfers/42: 503 Service Unavailable")
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "503 Service Unavailable") ||
		!strings.Contains(logs.String(), "still waiting, up to BACKUP_CAPTURE_TIMEOUT") {
		t.Errorf("the outage was not logged:\n%s", logs)
	}
}

// The same Heroku backup lands under the same key, with the same top-level manifest fields, as
// before sources were separate (../verify/testdata/layout-v1 was written by that code from this
// very backup); only the origin block is new.
func TestKeyAndManifestKeepTheFirstLayout(t *testing.T) {
	const key = "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z"
	old, err := os.ReadFile("../verify/testdata/layout-v1/" + key + ".json")
	if err != nil {
		t.Fatal(err)
	}
	j, _, store, _ := newJob(t, realDump(t), ModeCapture)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Key != key+".dump" {
		t.Fatalf("key = %s, want %s.dump", res.Key, key)
	}
	var was, now map[string]any
	if err := json.Unmarshal(old, &was); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(store.Get(ManifestKey(res.Key)), &now); err != nil {
		t.Fatal(err)
	}
	origin, _ := now["origin"].(map[string]any)
	if origin["source"] != "pgbackups" {
		t.Errorf("origin = %v", now["origin"])
	}
	delete(now, "origin")
	// The check's summary has since gained how much of the data it decompressed: fields added
	// inside structure, which readers of layout 1 ignore; nothing there was removed or changed.
	if st, ok := now["structure"].(map[string]any); ok {
		if st["inflated_data_bytes"] != st["compressed_data_bytes"] || st["compressed_data_bytes"] == nil {
			t.Errorf("structure says %v of %v compressed bytes decompressed; a full check decompresses all", st["inflated_data_bytes"], st["compressed_data_bytes"])
		}
		delete(st, "compressed_data_bytes")
		delete(st, "inflated_data_bytes")
	}
	a, _ := json.Marshal(was)
	b, _ := json.Marshal(now)
	if !bytes.Equal(a, b) {
		t.Errorf("top-level manifest fields changed:\nwas %s\nnow %s", a, b)
	}
}
