package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// countingSource counts the objects read, to show which lookups cost a read per archive.
type countingSource struct {
	catalog.Reader
	mu    sync.Mutex
	opens int
}

func (c *countingSource) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	c.mu.Lock()
	c.opens++
	c.mu.Unlock()
	return c.Reader.Open(ctx, key)
}

func newStore(t *testing.T) *filestore.Store {
	t.Helper()
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backup is one Heroku backup as the job files it.
type backup struct {
	app, attachment, addon, name string
	finished                     time.Time
	noManifest                   bool
}

// key is where the job puts b: the real catalog.Key of the transfer b names.
func (b backup) key() string {
	tr := heroku.Transfer{FromType: "pg_dump", ToType: "gof3r", FinishedAt: heroku.Time{Time: b.finished}}
	tr.Num, _ = heroku.ParseBackupName(b.name)
	if b.name[0] == 'a' {
		tr.Schedule = &heroku.TransferSchedule{UUID: "s"}
	}
	return catalog.Key(pgbackups.Meta(heroku.Database{App: b.app, Attachment: b.attachment, AddonName: b.addon}, tr, pgbackups.ModeCapture))
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
		m, _ := json.Marshal(catalog.Manifest{ManifestVersion: 1, App: b.app, Database: b.attachment, Addon: b.addon,
			Backup: b.name, BackupFinishedAt: b.finished, Key: k})
		put(t, s, catalog.ManifestKey(k), m)
	}
}

func put(t *testing.T, s *filestore.Store, key string, body []byte) {
	t.Helper()
	if err := s.Put(context.Background(), store.Object{Key: key, Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
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
					got, err := catalog.Latest(context.Background(), s, "shop", target)
					if err != nil {
						t.Fatalf("%s: %v", target, err)
					}
					if info, _ := catalog.ParseKey(got); info.Backup != tt.want {
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
		got, err := catalog.Latest(context.Background(), s, "shop", tt.database)
		if err != nil {
			t.Errorf("shop:%s: %v", tt.database, err)
			continue
		}
		if info, _ := catalog.ParseKey(got); info.Backup != tt.want || info.App != "shop" {
			t.Errorf("shop:%s: Latest picked %s, want backup %s of shop", tt.database, got, tt.want)
		}
	}
	if got, err := catalog.Latest(context.Background(), s, "shop-prod", "DATABASE_URL"); err != nil || !strings.Contains(got, "b900") {
		t.Errorf("shop-prod:DATABASE_URL: %s, %v", got, err)
	}

	// Names that match nothing say what there is.
	for _, database := range []string{"HEROKU_POSTGRESQL_RED_URL", "postgresql-gone-1"} {
		_, err := catalog.Latest(context.Background(), s, "shop", database)
		if err == nil || !strings.Contains(err.Error(), "no archive of shop:"+database) ||
			!strings.Contains(err.Error(), "shop has archives of DATABASE, HEROKU_POSTGRESQL_PINK") {
			t.Errorf("shop:%s: %v", database, err)
		}
	}
	// A newer dump without a manifest under another attachment is not taken for the add-on's.
	file(t, s, backup{app: "shop", attachment: "HEROKU_POSTGRESQL_PINK", name: "b014", finished: at(24, 5, 0, 0), noManifest: true})
	if got, err := catalog.Latest(context.Background(), s, "shop", "postgresql-globular-83867"); err != nil || !strings.Contains(got, "b012") {
		t.Errorf("the add-on name beside another database's dump without a manifest: %s, %v", got, err)
	}

	if _, err := catalog.Latest(context.Background(), s, "cart", "DATABASE_URL"); err == nil || !strings.Contains(err.Error(), "no archive of cart at all") {
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
	src := &countingSource{Reader: s}
	if _, err := catalog.Latest(context.Background(), src, "shop", "DATABASE_URL"); err != nil || src.opens != 0 {
		t.Errorf("DATABASE_URL: %v; %d objects read, want none", err, src.opens)
	}
	src.opens = 0
	got, err := catalog.Latest(context.Background(), src, "shop", "postgresql-globular-83867")
	if err != nil || !strings.Contains(got, "b001") || src.opens != 21 {
		t.Errorf("the add-on name: %s, %v; %d manifests read, want the 21 newest-first", got, err, src.opens)
	}
}

// A key named for a day in the future (anyone with the uploader's keys can write one) is not the
// newest archive for ever: its time is bounded by when the store wrote it.
func TestLatestBoundsKeysByTheStoresClock(t *testing.T) {
	s := newStore(t)
	forged := backup{app: "shop", attachment: "DATABASE", name: "b999", finished: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), noManifest: true}
	real := backup{app: "shop", attachment: "DATABASE", name: "b042", finished: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	file(t, s, forged)
	written := time.Now().Add(-2 * time.Hour) // before the real archive's backup finished
	if err := os.Chtimes(s.Location(forged.key()), written, written); err != nil {
		t.Fatal(err)
	}
	file(t, s, real)
	if got, err := catalog.Latest(context.Background(), s, "shop", "DATABASE_URL"); err != nil || got != real.key() {
		t.Errorf("Latest = %s, %v; want %s", got, err, real.key())
	}
}
