package dest

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// TestPickBucket: --destination by number (ARCHIVE_URL's order, counting every scheme)
// or by URL; with several S3 destinations and no choice, an error listing them.
func TestPickBucket(t *testing.T) {
	aws := s3store.Settings{Bucket: "aws-archive", Prefix: "pg"}.Archive()
	file := filestore.Settings{Dir: "/mnt/archive"}.Archive()
	b2 := s3store.Settings{Bucket: "b2-archive", Keys: "B2"}.Archive()
	one := []spec.Archive{file, aws}
	two := []spec.Archive{aws, file, b2}

	for _, c := range []struct {
		all    []spec.Archive
		choice string
		want   string // the bucket, or the error's text
	}{
		{one, "", "aws-archive"},
		{one, "2", "aws-archive"},
		{two, "1", "aws-archive"},
		{two, "3", "b2-archive"},
		{two, "s3://b2-archive", "b2-archive"},
		{two, "s3://aws-archive/pg/", "aws-archive"},
		{two, "", "ARCHIVE_URL names 2 S3 destinations: say which with one of\n  --destination 1   (or --destination s3://aws-archive/pg)\n  --destination 3   (or --destination s3://b2-archive)"},
		{two, "2", "--destination 2 is file:///mnt/archive, not an S3 bucket"},
		{two, "4", "--destination 4: ARCHIVE_URL names 3 destination(s)"},
		{two, "0", "--destination 0: ARCHIVE_URL names 3 destination(s)"},
		{two, "s3://other", "--destination s3://other is not one of ARCHIVE_URL's S3 destinations"},
		{[]spec.Archive{file}, "", "ARCHIVE_URL names no s3:// destination"},
		{[]spec.Archive{aws, s3store.Settings{Bucket: "aws-archive", Prefix: "pg", Endpoint: "https://s3.eu-central-003.backblazeb2.com"}.Archive()},
			"s3://aws-archive/pg", "--destination s3://aws-archive/pg names 2 destinations (the same bucket at different endpoints): give its number instead"},
	} {
		_, s, err := PickBucket(c.all, c.choice)
		got := s.Bucket
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%d destinations, --destination %q: %q, want %q", len(c.all), c.choice, got, c.want)
		}
	}
}

// TestPick: a reading command takes the first destination unless --destination names another,
// of any kind.
func TestPick(t *testing.T) {
	aws := s3store.Settings{Bucket: "aws-archive"}.Archive()
	file := filestore.Settings{Dir: "/mnt/archive"}.Archive()
	all := []spec.Archive{aws, file}
	for choice, want := range map[string]string{"": "s3://aws-archive", "2": "file:///mnt/archive", "file:///mnt/archive/": "file:///mnt/archive"} {
		if a, err := Pick(all, choice); err != nil || a.String() != want {
			t.Errorf("--destination %q: %s, %v; want %s", choice, a, err, want)
		}
	}
	if _, err := Pick(all, "3"); err == nil || !strings.Contains(err.Error(), "--destination 3: ARCHIVE_URL names 2 destination(s); the destinations are") {
		t.Errorf("--destination 3: %v", err)
	}
}

// TestPickAll: status reads every destination unless --destination names one.
func TestPickAll(t *testing.T) {
	file := filestore.Settings{Dir: "/mnt/archive"}.Archive()
	aws := s3store.Settings{Bucket: "aws-archive"}.Archive()
	all := []spec.Archive{file, aws}
	for _, choice := range []string{"", "all", " all "} {
		if got, err := PickAll(all, choice); err != nil || len(got) != 2 {
			t.Errorf("PickAll(%q) = %v, %v; want both", choice, got, err)
		}
	}
	if got, err := PickAll(all, "2"); err != nil || len(got) != 1 || got[0].String() != "s3://aws-archive" {
		t.Errorf("PickAll(2) = %v, %v", got, err)
	}
	if _, err := PickAll(all, "3"); err == nil {
		t.Error("PickAll(3) of two destinations succeeded")
	}
}
