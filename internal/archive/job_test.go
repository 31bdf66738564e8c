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
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// realDump is a real pg_dump 15 archive (uncompressed, written to a pipe as Heroku's are).
func realDump(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bytesSource yields body as a backup of shop's DATABASE, b042, of known or unknown size.
type bytesSource struct {
	body    []byte
	unknown bool                          // Size is store.UnknownSize
	wrap    func(*bytes.Reader) io.Reader // e.g. throttled
}

var finished = time.Date(2026, 11, 23, 2, 3, 4, 0, time.UTC)

func (s *bytesSource) Open(ctx context.Context, t Target) (Backup, error) {
	var r io.Reader = bytes.NewReader(s.body)
	if s.wrap != nil {
		r = s.wrap(bytes.NewReader(s.body))
	}
	size := int64(len(s.body))
	if s.unknown {
		size = store.UnknownSize
	}
	return Backup{Meta: catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b042", At: finished, FinishedAt: finished, Mode: "latest",
		Origin: catalog.Origin{Source: "pgbackups", Heroku: &catalog.HerokuOrigin{App: "shop", Attachment: "DATABASE", Addon: "postgresql-x-1", BillingApp: "shop"}}},
		Body: io.NopCloser(r), Size: size}, nil
}

func newJob(t testing.TB, body []byte) (*Job, *bytesSource, *memstore.Store, *bytes.Buffer) {
	t.Helper()
	src := &bytesSource{body: body}
	store := &memstore.Store{}
	var logs bytes.Buffer
	j := &Job{Source: src, Destinations: []Destination{{Name: "mem", Store: store}}, Version: "test", Log: zerolog.New(&logs), Now: func() time.Time { return finished.Add(time.Hour) }}
	return j, src, store, &logs
}

func TestArchiveRefusesErrorPageBeforeUpload(t *testing.T) {
	page := []byte("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>")
	j, _, store, _ := newJob(t, page)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not a pg_dump custom-format archive") {
		t.Fatalf("err = %v, want a refusal naming the format", res.Err)
	}
	if store.Puts() != 0 {
		t.Errorf("store saw %d puts, want none", store.Puts())
	}
}

// discardStore counts bytes and keeps nothing: the benchmark measures the job's own path
// (header check, SHA-256, counting) on top of the download.
type discardStore struct{}

func (discardStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err == nil && obj.Size != store.UnknownSize && n != obj.Size {
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
			j, _, _, _ := newJob(b, body)
			j.Destinations = []Destination{{Name: "discard", Store: discardStore{}}}
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
		j, _, store, logs := newJob(t, body)
		j.Check = mode
		j.checkAllowance = func(time.Duration) time.Duration { return 0 }
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatalf("%s: %v", mode, res.Err)
		}
		if !bytes.Equal(store.Get(res.Key), body) {
			t.Fatalf("%s: the archived bytes differ from the download", mode)
		}
		var m catalog.Manifest
		if err := json.Unmarshal(store.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
			t.Fatal(err)
		}
		tb := m.Structure.Tables[0]
		logged := strings.Contains(logs.String(), "checked for framing")
		// The manifest says how much of the compressed data was decompressed: all of it in full,
		// less in auto, which cut the one table.
		var raw struct {
			Structure map[string]any `json:"structure"`
		}
		if err := json.Unmarshal(store.Get(catalog.ManifestKey(res.Key)), &raw); err != nil {
			t.Fatal(err)
		}
		packed, okP := raw.Structure["compressed_data_bytes"].(float64)
		inflated, okI := raw.Structure["inflated_data_bytes"].(float64)
		if !okP || !okI || packed < float64(len(body))/2 || packed >= float64(len(body)) || inflated < 0 ||
			mode == CheckFull && inflated != packed || mode == CheckAuto && inflated >= packed {
			t.Errorf("%s: manifest structure has compressed_data_bytes %v, inflated_data_bytes %v; the archive is %d bytes",
				mode, raw.Structure["compressed_data_bytes"], raw.Structure["inflated_data_bytes"], len(body))
		}
		if mode == CheckAuto && (!strings.Contains(logs.String(), `"decompressed":"`+Decompressed(*m.Structure)+`"`) ||
			res.Decompressed != Decompressed(*m.Structure)) {
			t.Errorf("auto: the log and the result (%q) do not say how much was decompressed (%s):\n%s", res.Decompressed,
				Decompressed(*m.Structure), logs)
		}
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
	j, _, store, _ := newJob(t, body[:len(body)-100])
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "the archive is damaged") {
		t.Fatalf("err = %v", res.Err)
	}
	if store.Len() != 0 {
		t.Errorf("stored %d objects", store.Len())
	}
}

// Every check mode but header refuses a truncated archive and records the structure of a good one.
func TestArchiveCheckModes(t *testing.T) {
	body := realDump(t)
	for _, mode := range []string{"", CheckAuto, CheckFull, CheckHeader} {
		j, _, store, _ := newJob(t, body[:len(body)-100])
		j.Check = mode
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if caught := res.Err != nil; caught != (mode != CheckHeader) {
			t.Errorf("check %q, truncated archive: err = %v, %d objects stored", mode, res.Err, store.Len())
		}

		j, _, store, _ = newJob(t, body)
		j.Check = mode
		res = j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatalf("check %q: %v", mode, res.Err)
		}
		var m catalog.Manifest
		if err := json.Unmarshal(store.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
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
// default check: never published, at full speed (the whole archive arrives at once, from memory) or
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
				j, src, store, _ := newJob(t, bad)
				if c.bps > 0 {
					src.wrap = func(r *bytes.Reader) io.Reader { return throttled{r, c.bps} }
				}
				res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
				if res.Err == nil || !strings.Contains(res.Err.Error(), "the archive is damaged") || !strings.Contains(res.Err.Error(), "table public.blobs") {
					t.Fatalf("run %d: err = %v (framing only: %v); want the damage found in table public.blobs", run+1, res.Err, res.FramingOnly)
				}
				if store.Len() != 0 {
					t.Fatalf("run %d: %d objects published", run+1, store.Len())
				}
			}
		})
	}
}

// A stream of unknown length is stored to its end, counted, hashed and described like any other;
// one that fails part-way publishes nothing and the target fails with the source's words.
func TestArchiveUnknownSize(t *testing.T) {
	body := realDump(t)
	j, src, mem, _ := newJob(t, body)
	src.unknown = true
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(mem.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if !bytes.Equal(mem.Get(res.Key), body) || res.Bytes != int64(len(body)) || m.Bytes != int64(len(body)) ||
		m.SHA256 != hex.EncodeToString(sum[:]) || m.Structure == nil || len(m.Structure.Tables) == 0 {
		t.Errorf("result %+v, manifest %+v", res, m)
	}

	j, src, mem, _ = newJob(t, body)
	src.unknown = true
	src.wrap = func(r *bytes.Reader) io.Reader {
		return io.MultiReader(io.LimitReader(r, int64(len(body)/2)), iotest.ErrReader(errors.New("pg_dump: error: connection to server lost")))
	}
	res = j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "connection to server lost") || !strings.Contains(res.Err.Error(), "app=shop database=DATABASE_URL") {
		t.Fatalf("err = %v, want pg_dump's words and the target", res.Err)
	}
	if mem.Len() != 0 {
		t.Errorf("%d objects stored", mem.Len())
	}
}

// metaSource yields a dump that is not Heroku's: the manifest's Heroku fields stay empty and the
// origin block says where it came from.
type metaSource struct {
	body []byte
	meta catalog.Meta
}

func (s metaSource) Open(ctx context.Context, t Target) (Backup, error) {
	return Backup{Meta: s.meta, Body: io.NopCloser(bytes.NewReader(s.body)), Size: store.UnknownSize}, nil
}

func TestArchiveManifestOfAnotherSource(t *testing.T) {
	started := time.Date(2026, 12, 1, 9, 30, 5, 0, time.UTC)
	j, _, mem, _ := newJob(t, nil)
	j.Source = metaSource{body: realDump(t), meta: catalog.Meta{App: "SHOP_DATABASE_URL", Database: "SHOP_DATABASE_URL", Backup: "dump-0a1b2c3d",
		At: started, CreatedAt: started, Mode: "pg_dump",
		Origin: catalog.Origin{Source: "pg_dump", PgDump: &catalog.DumpOrigin{EnvVar: "SHOP_DATABASE_URL", ClientVersion: "16.4", ServerVersion: "15.8"}}}}
	res := j.Archive(context.Background(), Target{App: "env", Database: "SHOP_DATABASE_URL", Env: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	const want = "SHOP_DATABASE_URL/SHOP_DATABASE_URL/2026/12/01/SHOP_DATABASE_URL-SHOP_DATABASE_URL-dump-0a1b2c3d-20261201T093005Z.dump"
	if res.Key != want {
		t.Fatalf("key %s, want %s", res.Key, want)
	}
	if info, ok := catalog.ParseKey(res.Key); !ok || info.Backup != "dump-0a1b2c3d" || !info.FinishedAt.Equal(started) {
		t.Errorf("ParseKey = %+v, %v", info, ok)
	}
	var m map[string]any
	if err := json.Unmarshal(mem.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
		t.Fatal(err)
	}
	origin, _ := m["origin"].(map[string]any)
	if m["addon"] != "" || m["transfer_uuid"] != "" || m["mode"] != "pg_dump" || origin["source"] != "pg_dump" ||
		m["backup_finished_at"] != "2026-11-23T03:03:04Z" { // the job's clock when the stream ended
		t.Errorf("manifest %v", m)
	}
}
