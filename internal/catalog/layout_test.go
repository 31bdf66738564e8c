package catalog_test

import (
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgbackups"
)

// ParseKey reads back what Key writes, and nothing else.
func TestParseKey(t *testing.T) {
	finished := time.Date(2026, 11, 24, 2, 15, 7, 0, time.UTC)
	tests := []struct {
		db   heroku.Database
		tr   heroku.Transfer
		want catalog.KeyInfo
	}{
		{heroku.Database{App: "shop-prod", Attachment: "DATABASE"}, heroku.Transfer{Num: 1000, FinishedAt: heroku.Time{Time: finished}},
			catalog.KeyInfo{App: "shop-prod", Database: "DATABASE", Backup: "b1000", Num: 1000, FinishedAt: finished}},
		{heroku.Database{App: "a-b-c", Attachment: "heroku_postgresql_pink"},
			heroku.Transfer{Num: 7, FromType: "pg_dump", ToType: "gof3r", Schedule: &heroku.TransferSchedule{}, FinishedAt: heroku.Time{Time: finished.Add(time.Hour)}},
			catalog.KeyInfo{App: "a-b-c", Database: "HEROKU_POSTGRESQL_PINK", Backup: "a007", Num: 7, FinishedAt: finished.Add(time.Hour)}},
		{heroku.Database{App: "old", Attachment: "DATABASE"}, heroku.Transfer{Options: map[string]any{"pgbackups_name": "b001"}, CreatedAt: heroku.Time{Time: finished}},
			catalog.KeyInfo{App: "old", Database: "DATABASE", Backup: "ob001", FinishedAt: finished}},
	}
	for _, tt := range tests {
		k := catalog.Key(pgbackups.Meta(tt.db, tt.tr, pgbackups.ModeCapture))
		got, ok := catalog.ParseKey(k)
		if !ok || got != tt.want {
			t.Errorf("ParseKey(%s) = %+v, %v; want %+v", k, got, ok, tt.want)
		}
		if _, ok := catalog.ParseKey(catalog.ManifestKey(k)); ok {
			t.Errorf("ParseKey accepted the manifest key %s", catalog.ManifestKey(k))
		}
	}
	for _, k := range []string{
		"shop/DATABASE/2026/11/24/shop-DATABASE-b042-20261124T021507Z",      // no .dump
		"shop/DATABASE/2026/11/25/shop-DATABASE-b042-20261124T021507Z.dump", // day directory and name disagree
		"shop/DATABASE/2026/11/24/cart-DATABASE-b042-20261124T021507Z.dump", // another app's name
		"shop/DATABASE/2026/11/24/shop-DATABASE-b042-2026-11-24.dump",
		"shop/DATABASE/2026/11/24/shop-DATABASE--20261124T021507Z.dump",
		"x/shop/DATABASE/2026/11/24/shop-DATABASE-b042-20261124T021507Z.dump",
		"shop/DATABASE/notes.dump",
	} {
		if got, ok := catalog.ParseKey(k); ok {
			t.Errorf("ParseKey(%s) = %+v, want not a key", k, got)
		}
	}
}

// A set's part keys are read back by PartOf and never taken for dumps.
func TestPartKeys(t *testing.T) {
	for _, dump := range []string{
		"shop/DATABASE/2026/11/24/shop-DATABASE-dump-0a1b2c3d-20261124T021507Z.dump",
		"shop/DATABASE/2026/11/24/shop-DATABASE-dump-0a1b2c3d-20261124T021507Z.dump.age",
	} {
		for _, n := range []int{1, 9, 12, 100} {
			key := catalog.PartKey(dump, n)
			if _, ok := catalog.ParseKey(key); ok {
				t.Errorf("ParseKey(%q) took a part for a dump", key)
			}
			got, gotN, ok := catalog.PartOf(key)
			if !ok || got != dump || gotN != n {
				t.Errorf("PartOf(%q) = %q, %d, %v; want %q, %d", key, got, gotN, ok, dump, n)
			}
		}
		for _, bad := range []string{dump, dump + ".part", dump + ".part1", dump + ".part00", dump + ".part-1", dump + ".partxx", "other/key.part01", dump + ".json.part01"} {
			if _, _, ok := catalog.PartOf(bad); ok {
				t.Errorf("PartOf(%q) took it for a part", bad)
			}
		}
	}
}
