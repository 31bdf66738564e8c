package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// memStore keeps objects in memory and follows the Store contract.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    int
}

func (m *memStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	m.mu.Lock()
	m.puts++
	m.mu.Unlock()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != obj.Size {
		return store.ErrSizeMismatch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects == nil {
		m.objects = map[string][]byte{}
	}
	if _, ok := m.objects[obj.Key]; ok {
		return fmt.Errorf("mem: %s: %w", obj.Key, store.ErrExists)
	}
	m.objects[obj.Key] = b
	return nil
}

func (m *memStore) Location(key string) string { return "mem://" + key }

var _ store.Store = (*memStore)(nil)

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

// realDump is a real pg_dump 15 archive (uncompressed, written to a pipe as Heroku's are).
func realDump(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newJob(t testing.TB, body []byte, mode string) (*Job, *fakeHeroku, *memStore, *bytes.Buffer) {
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
	store := &memStore{}
	var logs bytes.Buffer
	j := &Job{Heroku: fh, Download: &fetch.Ranged{Options: fetch.Options{ChunkSize: 64 << 10}}, Store: store, Mode: mode, MaxAge: 26 * time.Hour,
		Version: "test", Log: zerolog.New(&logs), Now: func() time.Time { return finished.Add(time.Hour) }}
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
	if !bytes.Equal(store.objects[wantKey], body) {
		t.Fatal("archived bytes differ from the download")
	}
	sum := sha256.Sum256(body)
	var m Manifest
	if err := json.Unmarshal(store.objects[ManifestKey(wantKey)], &m); err != nil {
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

func TestArchiveRefusesErrorPageBeforeUpload(t *testing.T) {
	page := []byte("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>")
	j, _, store, _ := newJob(t, page, ModeCapture)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not a pg_dump custom-format archive") {
		t.Fatalf("err = %v, want a refusal naming the format", res.Err)
	}
	if store.puts != 0 {
		t.Errorf("store saw %d puts, want none", store.puts)
	}
}

func TestArchiveLatestRefusesOldBackup(t *testing.T) {
	j, fh, store, _ := newJob(t, realDump(t), ModeLatest)
	j.MaxAge = 30 * time.Minute
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "BACKUP_MAX_AGE") {
		t.Fatalf("err = %v, want BACKUP_MAX_AGE refusal", res.Err)
	}
	if fh.captures != 0 || store.puts != 0 {
		t.Errorf("captures=%d puts=%d, want 0 0", fh.captures, store.puts)
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
	if len(store.objects) != 2 {
		t.Errorf("%d objects, want dump + manifest", len(store.objects))
	}
}

func TestRunContinuesAfterAFailure(t *testing.T) {
	j, _, store, _ := newJob(t, realDump(t), ModeCapture)
	results := j.Run(context.Background(), []Target{{App: "shop", Database: "NOPE"}, {App: "shop", Database: "DATABASE_URL"}})
	if results[0].Err == nil || results[1].Err != nil {
		t.Fatalf("results: %v / %v", results[0].Err, results[1].Err)
	}
	if len(store.objects) != 2 {
		t.Errorf("%d objects, want 2", len(store.objects))
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
	if store.puts != 0 {
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

// discardStore counts bytes and keeps nothing: the benchmark measures the job's own path
// (header check, SHA-256, counting) on top of the download.
type discardStore struct{}

func (discardStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err == nil && n != obj.Size {
		err = store.ErrSizeMismatch
	}
	return err
}
func (discardStore) Location(key string) string { return key }

func TestMain(m *testing.M) { testenv.Main(m) }

// randomDump is a real pg_dump archive of one table holding mib MiB of random bytes (default
// compression: a single zlib stream about as long as the data).
func randomDump(t testing.TB, mib int) []byte {
	pg := testenv.StartPostgres(t)
	db, dsn := pg.CreateDB(t, "random")
	pg.Exec(t, db, fmt.Sprintf(`CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, %d) g;`, mib*1024))
	path := filepath.Join(t.TempDir(), "random.dump")
	if out, err := exec.Command(pg.Bin("pg_dump"), "-Fc", "-d", dsn, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// BenchmarkArchive streams a real 32 MiB pg_dump archive through the job in each check mode:
// download, header and structure check, SHA-256, counting. full shows what inflating one table's
// stream on one core costs.
func BenchmarkArchive(b *testing.B) {
	body := randomDump(b, 32)
	for _, mode := range []string{CheckAuto, CheckFull, CheckHeader} {
		b.Run(mode, func(b *testing.B) {
			j, _, _, _ := newJob(b, body, ModeLatest)
			j.Store = discardStore{}
			j.Download = &fetch.Ranged{Options: fetch.Options{Concurrency: 4, ChunkSize: 8 << 20}}
			j.Check = mode
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"}); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		})
	}
}

// A table whose data arrives faster than one core inflates it, in an archive of 64 MiB or more:
// once the download has waited for decompression longer than its allowance (none here), auto
// checks the table's framing, says so in the log, the result and the manifest, and archives it
// whole; full inflates all of it and counts its rows.
func TestArchiveAutoCheckKeepsUp(t *testing.T) {
	const mib = 70
	body := randomDump(t, mib)
	if len(body) < pgdump.FullCheckBelow {
		t.Fatalf("the archive is %d bytes, under %d", len(body), pgdump.FullCheckBelow)
	}
	for _, mode := range []string{CheckAuto, CheckFull} {
		j, _, store, logs := newJob(t, body, ModeLatest)
		j.Download = &fetch.Ranged{Options: fetch.Options{Concurrency: 4, ChunkSize: 8 << 20}}
		j.Check = mode
		j.checkAllowance = func(time.Duration) time.Duration { return 0 }
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatalf("%s: %v", mode, res.Err)
		}
		if !bytes.Equal(store.objects[res.Key], body) {
			t.Fatalf("%s: the archived bytes differ from the download", mode)
		}
		var m Manifest
		if err := json.Unmarshal(store.objects[ManifestKey(res.Key)], &m); err != nil {
			t.Fatal(err)
		}
		tb := m.Structure.Tables[0]
		logged := strings.Contains(logs.String(), "checked for framing")
		switch mode {
		case CheckAuto:
			if !tb.FramingOnly || tb.Rows != -1 || !logged || !strings.Contains(logs.String(), `"tables":["public.blobs"]`) ||
				!reflect.DeepEqual(res.FramingOnly, []string{"public.blobs"}) || !res.PartlyChecked() {
				t.Errorf("auto: table %+v, result %v, logged %v:\n%s", tb, res.FramingOnly, logged, logs)
			}
		case CheckFull:
			if tb.FramingOnly || tb.Rows != mib*1024 || logged || res.PartlyChecked() {
				t.Errorf("full: table %+v, result %v, logged %v", tb, res.FramingOnly, logged)
			}
		}
	}
}

// An archive that does not parse is a failed backup: a truncated dump served with a consistent
// Content-Length is caught by the structure check, and nothing is stored.
func TestArchiveRefusesDamagedDump(t *testing.T) {
	body := realDump(t)
	j, _, store, _ := newJob(t, body[:len(body)-100], ModeLatest)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "the archive is damaged") {
		t.Fatalf("err = %v", res.Err)
	}
	if len(store.objects) != 0 {
		t.Errorf("stored %d objects", len(store.objects))
	}
}

// Every check mode but header refuses a truncated archive and records the structure of a good one.
func TestArchiveCheckModes(t *testing.T) {
	body := realDump(t)
	for _, mode := range []string{"", CheckAuto, CheckFull, CheckHeader} {
		j, _, store, _ := newJob(t, body[:len(body)-100], ModeLatest)
		j.Check = mode
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if caught := res.Err != nil; caught != (mode != CheckHeader) {
			t.Errorf("check %q, truncated archive: err = %v, %d objects stored", mode, res.Err, len(store.objects))
		}

		j, _, store, _ = newJob(t, body, ModeLatest)
		j.Check = mode
		res = j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatalf("check %q: %v", mode, res.Err)
		}
		var m Manifest
		if err := json.Unmarshal(store.objects[ManifestKey(res.Key)], &m); err != nil {
			t.Fatal(err)
		}
		if recorded := m.Structure != nil; recorded != (mode != CheckHeader) {
			t.Errorf("check %q: manifest structure = %+v", mode, m.Structure)
		}
	}
}

// zeroInTable zeroes n bytes in the middle of a chunk of the named table's compressed data, away
// from any chunk length: only decompressing the table finds the damage.
func zeroInTable(t *testing.T, body []byte, table string, n int) []byte {
	t.Helper()
	_, entries, err := pgdump.ReadTOC(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	start := -1
	for _, e := range entries {
		if e.Desc == "TABLE DATA" && e.Tag == table && e.DataState == pgdump.DataPosSet {
			start = int(e.Offset)
		}
	}
	if start < 0 {
		t.Fatalf("no data offset for table %s", table)
	}
	length := func(p int) int { // pg_dump's WriteInt: a sign byte, then 4 bytes, little end first
		if body[p] != 0 {
			t.Fatalf("negative chunk length at byte %d", p)
		}
		return int(binary.LittleEndian.Uint32(body[p+1:]))
	}
	var at []int
	for p := start + 1 + 5; length(p) > 0; p += 5 + length(p) {
		at = append(at, p)
	}
	for _, p := range at[len(at)/2:] {
		if length(p) >= 2*n+200 {
			b := append([]byte(nil), body...)
			clear(b[p+5+100 : p+5+100+n])
			return b
		}
	}
	t.Fatalf("no chunk of table %s long enough to damage", table)
	return nil
}

// throttled serves its content at about bps bytes a second.
type throttled struct {
	*bytes.Reader
	bps int
}

func (r throttled) Read(p []byte) (int, error) {
	const piece = 32 << 10
	time.Sleep(time.Duration(piece) * time.Second / time.Duration(r.bps))
	return r.Reader.Read(p[:min(len(p), piece)])
}

// 64 zeroed bytes inside a table's compressed data, in a real 5 MB pg_dump archive, under the
// default check: never published, at full speed (the whole archive arrives as one 8 MiB range) or
// at 2 MB/s, in any of many runs; the target fails with an error naming the table.
func TestArchiveAutoRefusesDamageInASmallDump(t *testing.T) {
	good := randomDump(t, 5)
	bad := zeroInTable(t, good, "blobs", 64)
	if _, err := pgdump.Check(bytes.NewReader(bad)); err == nil {
		t.Fatal("a full check passed the damaged archive")
	}
	for _, c := range []struct {
		name string
		runs int
		bps  int
	}{{"full speed", 12, 0}, {"2 MB/s", 3, 2_000_000}} {
		t.Run(c.name, func(t *testing.T) {
			for run := 0; run < c.runs; run++ {
				j, _, store, _ := newJob(t, bad, ModeLatest)
				if c.bps > 0 {
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						http.ServeContent(w, r, "b.dump", time.Time{}, throttled{bytes.NewReader(bad), c.bps})
					}))
					t.Cleanup(srv.Close)
					j.Heroku.(*fakeHeroku).url = srv.URL + "/backup.dump"
				}
				j.Download = &fetch.Ranged{Options: fetch.Options{Concurrency: 4, ChunkSize: 8 << 20}}
				res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
				if res.Err == nil || !strings.Contains(res.Err.Error(), "the archive is damaged") || !strings.Contains(res.Err.Error(), "table public.blobs") {
					t.Fatalf("run %d: err = %v (framing only: %v); want the damage found in table public.blobs", run+1, res.Err, res.FramingOnly)
				}
				if len(store.objects) != 0 {
					t.Fatalf("run %d: %d objects published", run+1, len(store.objects))
				}
			}
		})
	}
}
