package status

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// bucket is an in-memory destination that counts what is read from it. Its listing reports
// each object's size as stored (a dump's placeholder bytes stand for the size its manifest
// says) and when it was written.
type bucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	infos   map[string]store.Info // size and time of writing, by key
	opened  []string
}

func newBucket() *bucket {
	return &bucket{objects: map[string][]byte{}, infos: map[string]store.Info{}}
}

func (b *bucket) List(ctx context.Context, prefix string) (store.Listing, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var l store.Listing
	for k, body := range b.objects {
		if strings.HasPrefix(k, prefix) {
			info, ok := b.infos[k]
			if !ok {
				info = store.Info{Size: int64(len(body))}
			}
			info.Key = k
			l.Objects = append(l.Objects, info)
		}
	}
	store.SortInfos(l.Objects)
	return l, nil
}

func (b *bucket) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened = append(b.opened, key)
	body, ok := b.objects[key]
	if !ok {
		return nil, 0, fmt.Errorf("no such key %s", key)
	}
	return io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
}

// dumpsOpened counts the reads of archives, plain or encrypted.
func (b *bucket) dumpsOpened() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, k := range b.opened {
		if strings.HasSuffix(k, ".dump") || strings.HasSuffix(k, ".dump.age") {
			n++
		}
	}
	return n
}

// archive puts a dump and its manifest the way the job files them; plaintext > 0 makes it an
// encrypted one whose ciphertext is size bytes.
func (b *bucket) archive(t *testing.T, app, db string, num int, at time.Time, size, plaintext int64, retention string) string {
	t.Helper()
	backup := fmt.Sprintf("b%03d", num)
	key := catalog.Key(catalog.Meta{App: app, Database: db, Backup: backup, At: at})
	m := catalog.Manifest{ManifestVersion: 1, App: app, Database: db, Backup: backup, BackupFinishedAt: at.UTC(), Bytes: size, Key: key, Retention: retention}
	if plaintext > 0 {
		key += catalog.EncryptedSuffix
		m.Key = key
		m.Encryption = &catalog.Encryption{Format: "age", PlaintextBytes: plaintext}
	}
	blob, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = bytes.Repeat([]byte{'x'}, 16)
	b.objects[catalog.ManifestKey(key)] = blob
	// Stored a few minutes after the backup finished, the manifest last.
	b.infos[key] = store.Info{Size: size, Modified: at.Add(3 * time.Minute)}
	b.infos[catalog.ManifestKey(key)] = store.Info{Size: int64(len(blob)), Modified: at.Add(4 * time.Minute)}
	return key
}

func (b *bucket) verified(t *testing.T, key string, passed bool, at time.Time) {
	t.Helper()
	v := catalog.Verification{Key: key, Backup: "x", VerifiedAt: at, Passed: passed, Tables: 2, Rows: 10}
	if !passed {
		v.Error = "SHA-256 differs"
	}
	blob, _ := json.Marshal(v)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[catalog.VerifiedKey(key)] = blob
}

var now = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

// fortyDays archives app's DATABASE once a day at 02:15 for the 40 days up to today, except
// the days ago in gaps; sizes grow slowly.
func fortyDays(t *testing.T, b *bucket, app string, gaps ...int) map[int]string {
	keys := map[int]string{}
	skip := map[int]bool{}
	for _, g := range gaps {
		skip[g] = true
	}
	for ago := 39; ago >= 0; ago-- {
		if skip[ago] {
			continue
		}
		at := time.Date(2026, 12, 1-ago, 2, 15, 0, 0, time.UTC)
		keys[ago] = b.archive(t, app, "DATABASE", 100-ago, at, int64(1_000_000+1000*(40-ago)), 0, "daily")
	}
	return keys
}

func opts() Options {
	return Options{Now: now, MaxAge: 26 * time.Hour, MaxShrink: 0.5, Days: 90}
}

func statuses(e Entry) string {
	var s []byte
	for _, d := range e.Days {
		s = append(s, marks[d.Status])
	}
	return string(s)
}

func TestCalendarMarksExactlyTheGaps(t *testing.T) {
	b := newBucket()
	fortyDays(t, b, "shop", 0, 3, 4, 17)
	e := Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE_URL"}, opts())
	if len(e.Days) != 90 || e.Days[89].Date != "2026-12-01" || e.Days[0].Date != "2026-09-03" {
		t.Fatalf("days %d, %s .. %s", len(e.Days), e.Days[0].Date, e.Days[len(e.Days)-1].Date)
	}
	want := strings.Repeat(".", 50) + strings.Repeat("#", 40)
	wb := []byte(want)
	for _, g := range []int{0, 3, 4, 17} {
		wb[89-g] = '.'
	}
	if got := statuses(e); got != string(wb) {
		t.Errorf("calendar\n got %s\nwant %s", got, wb)
	}
	if e.Archives != 36 || e.Retention["daily"] != 36 || e.Newest == nil || e.Newest.Backup != "b099" {
		t.Errorf("archives %d, retention %v, newest %+v", e.Archives, e.Retention, e.Newest)
	}
	// Today has no archive yet, and yesterday's is 31h old: stale.
	if len(e.Problems) != 1 || !strings.Contains(e.Problems[0], "stale") || !strings.Contains(e.Problems[0], "BACKUP_MAX_AGE=26h") {
		t.Errorf("problems %q", e.Problems)
	}
	// Size change from the previous day with an archive.
	d := e.Days[89-1]
	if d.Bytes != 1_039_000 || d.ChangePercent == nil || fmt.Sprintf("%.3f", *d.ChangePercent) != "0.096" {
		t.Errorf("yesterday %+v", d)
	}
	if b.dumpsOpened() != 0 {
		t.Errorf("status read %d dumps", b.dumpsOpened())
	}
}

func TestWatchdog(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *bucket)
		problem string // "" = healthy
	}{
		{"healthy", func(t *testing.T, b *bucket) { fortyDays(t, b, "shop", 5) }, ""},
		{"stale", func(t *testing.T, b *bucket) { fortyDays(t, b, "shop", 0, 1) }, "stale: the newest archive (b098) finished 2d 7h ago, longer than BACKUP_MAX_AGE=26h"},
		{"shrunk", func(t *testing.T, b *bucket) {
			fortyDays(t, b, "shop", 0)
			b.archive(t, "shop", "DATABASE", 200, now.Add(-time.Hour), 400_000, 0, "")
		}, "shrunk: the newest archive (b200) is 390.6 KiB, 61 % less than the median 1012.2 KiB"},
		{"shrunk just under half", func(t *testing.T, b *bucket) {
			fortyDays(t, b, "shop", 0)
			b.archive(t, "shop", "DATABASE", 200, now.Add(-time.Hour), 518_000, 0, "")
		}, "shrunk"},
		{"half is not shrunk", func(t *testing.T, b *bucket) {
			fortyDays(t, b, "shop", 0)
			b.archive(t, "shop", "DATABASE", 200, now.Add(-time.Hour), 520_000, 0, "")
		}, ""},
		// The ciphertext is smaller than the plaintext of the days before (compressed data
		// would be): its plaintext size is what counts.
		{"encrypted is not shrunk", func(t *testing.T, b *bucket) {
			fortyDays(t, b, "shop", 0)
			b.archive(t, "shop", "DATABASE", 200, now.Add(-time.Hour), 300_000, 1_050_000, "")
		}, ""},
		{"nothing", func(t *testing.T, b *bucket) { fortyDays(t, b, "other") }, "no archive of shop:DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket()
			tt.prepare(t, b)
			e := Build(ctx, b, "mem://", Target{App: "shop", Database: "DATABASE_URL"}, opts())
			switch {
			case tt.problem == "" && !e.OK():
				t.Errorf("problems %q, want none", e.Problems)
			case tt.problem != "" && (len(e.Problems) != 1 || !strings.Contains(e.Problems[0], tt.problem)):
				t.Errorf("problems %q, want one with %q", e.Problems, tt.problem)
			}
			if b.dumpsOpened() != 0 {
				t.Errorf("status read %d dumps", b.dumpsOpened())
			}
		})
	}
}

func TestVerificationsAndNames(t *testing.T) {
	b := newBucket()
	keys := fortyDays(t, b, "shop")
	b.verified(t, keys[2], true, now.Add(-40*time.Hour))
	b.verified(t, keys[1], false, now.Add(-20*time.Hour))
	// Another database of the app, an env:VAR target, and foreign objects are passed over.
	b.archive(t, "shop", "HEROKU_POSTGRESQL_PINK", 7, now.Add(-time.Hour), 5, 0, "")
	b.archive(t, "LEGACY_URL", "LEGACY_URL", 8, now.Add(-2*time.Hour), 7, 0, "")
	b.objects["shop/notes.txt"] = []byte("hello")
	// A dump whose manifest is missing (a run killed between the two) does not count: it is a
	// problem, named.
	lone := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b500", At: now.Add(-time.Minute)})
	b.objects[lone] = []byte("x")

	e := Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE"}, opts())
	cal := statuses(e)
	if got := cal[len(cal)-3:]; got != "vX#" {
		t.Errorf("last three days %q, want vX#", got)
	}
	if e.Verification == nil || e.Verification.Passed || e.Verification.Error != "SHA-256 differs" {
		t.Errorf("newest verification %+v", e.Verification)
	}
	if e.Archives != 40 || e.Newest.Backup != "b100" || e.OK() || len(e.Problems) != 1 ||
		!strings.HasPrefix(e.Problems[0], lone+" has no manifest beside it") || !strings.Contains(e.Problems[0], "does not count") {
		t.Errorf("archives %d newest %+v problems %q", e.Archives, e.Newest, e.Problems)
	}
	if w := strings.Join(e.Warnings, "\n"); !strings.Contains(w, "newest verification") {
		t.Errorf("warnings %q", e.Warnings)
	}

	pink := Build(context.Background(), b, "mem://", Target{App: "shop", Database: "HEROKU_POSTGRESQL_PINK_URL"}, opts())
	env := Build(context.Background(), b, "mem://", Target{App: "env", Database: "LEGACY_URL", Env: true}, opts())
	if pink.Archives != 1 || env.Archives != 1 || env.App != "env" || env.Target != "env:LEGACY_URL" {
		t.Errorf("pink %d archives, env %d archives (%s)", pink.Archives, env.Archives, env.Target)
	}
	if b.dumpsOpened() != 0 {
		t.Errorf("status read %d dumps", b.dumpsOpened())
	}
}

// The days are dates in the configured zone: an archive at 23:30 UTC is the next day in Berlin.
func TestCalendarZone(t *testing.T) {
	b := newBucket()
	b.archive(t, "shop", "DATABASE", 1, time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC), 10, 0, "")
	o := opts()
	o.Days = 3
	utc := statuses(Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE"}, o))
	o.Zone = time.FixedZone("CET", 3600)
	cet := statuses(Build(context.Background(), b, "mem://", Target{App: "shop", Database: "DATABASE"}, o))
	if utc != "#.." || cet != ".#." {
		t.Errorf("UTC %q, CET %q", utc, cet)
	}
}

func TestTextAndJSON(t *testing.T) {
	b := newBucket()
	fortyDays(t, b, "shop", 2)
	e := Build(context.Background(), b, "s3://bkt/pg", Target{App: "shop", Database: "DATABASE"}, opts())
	r := Report{GeneratedAt: now, Timezone: "UTC", MaxAge: "26h0m0s", MaxShrink: 0.5, Targets: []Entry{e}}
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	want := strings.Repeat("#", 27) + ".##"
	for _, s := range []string{"shop:DATABASE at s3://bkt/pg: OK", "30 days    " + want, "1 missing", "retention  daily 39",
		"totals     39 archives", "verified   never", "11-30 1014.6 KiB (+0%)"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q", s)
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Targets []struct {
			App, Database, Destination string
			Newest                     struct {
				Backup     string
				FinishedAt time.Time `json:"finished_at"`
				Bytes      int64
			}
			Days []struct {
				Date, Status string
				Bytes        int64
			}
			Problems []string
		}
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || len(got.Targets) != 1 {
		t.Fatalf("%v: %s", err, js.String())
	}
	g := got.Targets[0]
	if g.App != "shop" || g.Database != "DATABASE" || g.Destination != "s3://bkt/pg" || g.Newest.Backup != "b100" ||
		!g.Newest.FinishedAt.Equal(time.Date(2026, 12, 1, 2, 15, 0, 0, time.UTC)) || g.Newest.Bytes != 1_040_000 || g.Problems == nil {
		t.Errorf("json %+v", g)
	}
	if len(g.Days) != 30 || g.Days[29].Date != "2026-12-01" || g.Days[27].Status != "missing" || g.Days[28].Status != "archived" || g.Days[28].Bytes != 1_039_000 {
		t.Errorf("json days %+v", g.Days)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	b := newBucket()
	fortyDays(t, b, "shop")
	r := Report{GeneratedAt: now, Timezone: "UTC", Targets: []Entry{Build(context.Background(), b, "s3://bkt/pg?x=<b>", Target{App: "shop", Database: "DATABASE"}, opts())}}
	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	assertSelfContained(t, page.String())
	if strings.Contains(page.String(), "<b>") {
		t.Error("a destination's name is not escaped")
	}
}

func assertSelfContained(t *testing.T, page string) {
	t.Helper()
	low := strings.ToLower(page)
	for _, bad := range []string{`src="http`, `href="http`, `src='http`, `href='http`, "url(http", "@import", "<link", "<script src", "//fonts."} {
		if strings.Contains(low, bad) {
			t.Errorf("the page fetches something: %q", bad)
		}
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{26 * time.Hour: "26h", 90 * time.Minute: "1h30m", 49*time.Hour + 30*time.Minute: "49h30m", 45 * time.Second: "45s"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{30 * time.Second: "30s", 5 * time.Minute: "5m", 7*time.Hour + 3*time.Minute: "7h 3m", 75 * time.Hour: "3d 3h"} {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}

type brokenBucket struct{ *bucket }

func (brokenBucket) List(ctx context.Context, prefix string) (store.Listing, error) {
	return store.Listing{}, fmt.Errorf("s3: list s3://bkt/pg/%s: AccessDenied", prefix)
}

// A destination that cannot be read is a problem: the watchdog cannot vouch for it.
func TestUnreadableDestination(t *testing.T) {
	e := Build(context.Background(), brokenBucket{newBucket()}, "s3://bkt/pg", Target{App: "shop", Database: "DATABASE"}, opts())
	if e.OK() || !strings.Contains(e.Problems[0], "cannot list the archives of shop:DATABASE at s3://bkt/pg") || len(e.Days) != 90 {
		t.Errorf("problems %q, %d days", e.Problems, len(e.Days))
	}
}
