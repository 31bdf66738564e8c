package listing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

func storeObject(key string, body []byte) store.Object {
	return store.Object{Key: key, Size: int64(len(body))}
}

func asUsage(err error, ue **UsageError) bool { return errors.As(err, ue) }

// bucket is a store holding archives as the job files them, written by the store's clock at
// each archive's finish time plus a minute.
type bucket struct {
	t   *testing.T
	s   *memstore.Store
	now time.Time
}

func newBucket(t *testing.T) *bucket {
	b := &bucket{t: t, s: &memstore.Store{}}
	b.s.Now = func() time.Time { return b.now }
	return b
}

// archive writes a dump and its manifest for db (a key's database segment) of app, finished at.
func (b *bucket) archive(app, db, backup string, at time.Time, dump []byte) string {
	b.t.Helper()
	key := catalog.Key(catalog.Meta{App: app, Database: db, Backup: backup, At: at})
	b.now = at.Add(time.Minute)
	b.put(key, dump)
	b.putJSON(catalog.ManifestKey(key), catalog.Manifest{ManifestVersion: 1, App: app, Database: db, Backup: backup,
		BackupCreatedAt: at.Add(-10 * time.Minute), BackupFinishedAt: at, Bytes: int64(len(dump)), Key: key})
	return key
}

func (b *bucket) put(key string, body []byte) {
	b.t.Helper()
	if err := b.s.Put(context.Background(), storeObject(key, body), bytes.NewReader(body)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bucket) putJSON(key string, v any) {
	b.t.Helper()
	blob, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	b.s.Overwrite(key, blob)
}

func day(d, h int) time.Time { return time.Date(2026, 1, d, h, 0, 0, 0, time.UTC) }

// A bucket with three good archives of shop:DATABASE (two on the 2nd), one of shop:PINK, and
// what the uploader's keys can add: a newer dump without a manifest, a manifest without its dump,
// a dump whose size is not its manifest's, and a verification record of another archive.
func hostile(t *testing.T) (b *bucket, keys map[string]string) {
	b = newBucket(t)
	keys = map[string]string{
		"b040": b.archive("shop", "DATABASE", "b040", day(1, 3), []byte("PGDMP one")),
		"b041": b.archive("shop", "DATABASE", "b041", day(2, 1), []byte("PGDMP two")),
		"b042": b.archive("shop", "DATABASE", "b042", day(2, 20), []byte("PGDMP three")),
		"pink": b.archive("shop", "HEROKU_POSTGRESQL_PINK", "b007", day(2, 5), []byte("PGDMP pink")),
	}
	b.now = day(3, 12)
	keys["lone"] = catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b043", At: day(3, 2)})
	b.put(keys["lone"], nil)
	keys["orphan"] = catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b039", At: day(1, 1)})
	b.putJSON(catalog.ManifestKey(keys["orphan"]), catalog.Manifest{Backup: "b039", Bytes: 10, Key: keys["orphan"]})
	// b040 verified for real; b041's record is b040's copied beside it.
	rec := catalog.Verification{Key: keys["b040"], Backup: "b040", VerifiedAt: day(3, 11), Passed: true}
	b.putJSON(catalog.VerifiedKey(keys["b040"]), rec)
	b.putJSON(catalog.VerifiedKey(keys["b041"]), rec)
	b.now = day(3, 13)
	return b, keys
}

func TestListNewestFirstAndHonest(t *testing.T) {
	b, keys := hostile(t)
	got, err := List(context.Background(), b.s, "shop:DATABASE_URL", b.now)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	byKey := map[string]Archive{}
	for _, a := range got {
		order = append(order, a.Backup)
		byKey[a.Key] = a
	}
	if strings.Join(order, " ") != "b043 b042 b041 b040 b039" {
		t.Fatalf("order %v", order)
	}
	if a := byKey[keys["b042"]]; !a.OK() || a.Verified != nil || a.Bytes != 11 || !a.TakenAt.Equal(day(2, 20).Add(-10*time.Minute)) || a.Target != "shop:DATABASE" {
		t.Errorf("b042: %+v", a)
	}
	if a := byKey[keys["b040"]]; !a.OK() || !a.Verified.Trusted() || !a.Verified.Passed {
		t.Errorf("b040's own record: %+v", a.Verified)
	}
	if a := byKey[keys["b041"]]; !a.OK() || a.Verified.Trusted() || !strings.Contains(strings.Join(a.Verified.Problems, " "), "is of another archive") {
		t.Errorf("b041 with b040's record: %+v", a.Verified)
	}
	if a := byKey[keys["lone"]]; a.OK() || !strings.Contains(a.Problems[0], "has no manifest beside it") {
		t.Errorf("dump without a manifest: %+v", a)
	}
	if a := byKey[keys["orphan"]]; a.OK() || !strings.Contains(a.Problems[0], "is a manifest without its dump") {
		t.Errorf("manifest without a dump: %+v", a)
	}

	// A dump replaced by another of a different size is not its manifest's archive.
	b.s.Overwrite(keys["b042"], []byte("PGDMP"))
	got, _ = List(context.Background(), b.s, "shop", b.now)
	for _, a := range got {
		if a.Key == keys["b042"] && (a.OK() || !strings.Contains(strings.Join(a.Problems, " "), "its manifest says 11")) {
			t.Errorf("overwritten b042: %+v", a)
		}
	}
	if len(got) != 6 {
		t.Errorf("shop has %d archives listed, want 6 (PINK's too)", len(got))
	}

	var text bytes.Buffer
	if err := WriteText(&text, Report{Destination: "mem://", Archives: got}, time.UTC); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KEY (--from)", "b040 2026-01-01 02:50  2026-01-01 03:00", "passed 2026-01-03",
		"record untrusted (below)", "NOT AN ARCHIVE (below)", "PROBLEM    " + keys["lone"] + " has no manifest beside it"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestResolve(t *testing.T) {
	b, keys := hostile(t)
	r := From{Src: b.s, Here: "s3://bk/pg", All: []string{"s3://bk/pg", "s3://other/x"}, Now: b.now}
	ctx := context.Background()
	for _, tc := range []struct{ from, key, err string }{
		{"shop:DATABASE_URL@latest", keys["b042"], ""},
		{"shop:DATABASE@2026-01-02", keys["b042"], ""},
		{"shop:HEROKU_POSTGRESQL_PINK_URL@2026-01-02", keys["pink"], ""},
		{keys["b041"], keys["b041"], ""},
		{"s3://bk/pg/" + keys["b040"], keys["b040"], ""},
		{"latest", "", "holds archives of 2 targets (shop:DATABASE, shop:HEROKU_POSTGRESQL_PINK): name one, e.g. --from shop:DATABASE@latest"},
		{"shop@latest", "", "holds archives of 2 targets"},
		{"shop:DATABASE@2026-01-03", "", "holds no archive of that day (2026-01-03, RETENTION_TIMEZONE's days); the nearest days with one: --from shop:DATABASE@2026-01-02"},
		{"shop:DATABASE@2025-12-30", "", "the nearest days with one: --from shop:DATABASE@2026-01-01"},
		{"shop:DATABASE@01/02/2026", "", "is none of latest"},
		{"s3://other/x/" + keys["b040"], "", "is at destination 2 of ARCHIVE_URL (s3://other/x), not at the one read (s3://bk/pg): add --destination 2"},
		{"s3://third/" + keys["b040"], "", "is at none of ARCHIVE_URL's destinations (1 s3://bk/pg; 2 s3://other/x)"},
	} {
		res, err := r.Resolve(ctx, tc.from)
		var ue *UsageError
		switch {
		case tc.err == "" && (err != nil || res.Key != tc.key):
			t.Errorf("%s: %q %v, want %s", tc.from, res.Key, err, tc.key)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %q %v, want an error with %q", tc.from, res.Key, err, tc.err)
		case tc.err != "" && !asUsage(err, &ue):
			t.Errorf("%s: %v is not a usage error", tc.from, err)
		}
	}
	// The newer lone dump is passed over, and said.
	if res, _ := r.Resolve(ctx, "shop:DATABASE@latest"); len(res.Passed) != 1 || !strings.Contains(res.Passed[0], keys["lone"]) {
		t.Errorf("passed over: %q", res.Passed)
	}
	// In Los Angeles' days, b041 (01:00 UTC on the 2nd) finished on the 1st, after b040.
	r.Zone, _ = time.LoadLocation("America/Los_Angeles")
	if res, err := r.Resolve(ctx, "shop:DATABASE@2026-01-01"); err != nil || res.Key != keys["b041"] {
		t.Errorf("Los Angeles' 1st: %q %v", res.Key, err)
	}
}

func TestResolveBundles(t *testing.T) {
	b := newBucket(t)
	b.now = day(1, 10)
	b.put(bundle.Key("shop", 41, bundle.ReleaseName), []byte("{}"))
	b.now = day(2, 10)
	b.put(bundle.Key("shop", 42, bundle.ReleaseName), []byte("{}"))
	b.put(bundle.Key("shop", 42, bundle.SlugName), []byte("slug"))
	r := From{Src: b.s, Want: Bundle, Here: "s3://bk/pg", Now: day(3, 0)}
	for from, want := range map[string]string{"latest": bundle.Key("shop", 42, bundle.ReleaseName),
		"shop@2026-01-01": bundle.Key("shop", 41, bundle.ReleaseName), "shop@latest": bundle.Key("shop", 42, bundle.ReleaseName)} {
		if res, err := r.Resolve(context.Background(), from); err != nil || res.Key != want {
			t.Errorf("%s: %q %v, want %s", from, res.Key, err, want)
		}
	}
	if _, err := r.Resolve(context.Background(), "shop@2026-01-05"); err == nil || !strings.Contains(err.Error(), "the nearest days with one: --from shop@2026-01-02") {
		t.Errorf("a day without a bundle: %v", err)
	}
	b.put(bundle.Key("blog", 3, bundle.ReleaseName), []byte("{}"))
	if _, err := r.Resolve(context.Background(), "latest"); err == nil || !strings.Contains(err.Error(), "bundles of 2 apps (blog, shop)") {
		t.Errorf("latest among two apps: %v", err)
	}
}
