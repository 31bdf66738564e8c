package dest

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/gcsstore"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
)

// env is an Env reading vars, with nothing else set.
func env(vars map[string]string) spec.Env {
	return spec.Env{Getenv: func(k string) string { return vars[k] }}
}

func TestUnknownSchemeIsRefused(t *testing.T) {
	_, _, err := Open(context.Background(), env(nil), spec.Archive{Scheme: "ftp"})
	if err == nil || !strings.Contains(err.Error(), `unsupported archive scheme "ftp"`) {
		t.Errorf("Open: %v", err)
	}
	if _, err := OpenReader(context.Background(), env(nil), spec.Archive{Scheme: "ftp"}); err == nil {
		t.Error("OpenReader of an unknown scheme succeeded")
	}
	if _, ok := For("ftp"); ok {
		t.Error("For(ftp) found a kind")
	}
}

// A directory opens with what it can do, for writing and for reading alike.
func TestFileKindDeclaresItsCaps(t *testing.T) {
	a := filestore.Settings{Dir: t.TempDir()}.Archive()
	st, c, err := Open(context.Background(), env(nil), a)
	if err != nil || st == nil {
		t.Fatalf("Open: %v", err)
	}
	if c.Reader == nil || c.Markers == nil || c.Records == nil || c.Stale == nil || c.Remove == nil || c.Abort != nil {
		t.Errorf("caps %+v", c)
	}
	rc, err := OpenReader(context.Background(), env(nil), a)
	if err != nil || rc.Reader == nil || rc.Records == nil {
		t.Errorf("OpenReader: %+v, %v", rc, err)
	}
}

// The S3 uploader may not read or delete; the reader reads and keeps records.
func TestS3KindSplitsWriterAndReader(t *testing.T) {
	a := s3store.Settings{Bucket: "b", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9"}.Archive()
	_, c, err := Open(context.Background(), env(nil), a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Reader != nil || c.Remove != nil || c.Markers == nil || c.Abort == nil || c.ConditionalWritesUnsupported == nil {
		t.Errorf("writer caps %+v", c)
	}
	rc, err := OpenReader(context.Background(), env(nil), a)
	if err != nil || rc.Reader == nil || rc.Records == nil || rc.Markers != nil {
		t.Errorf("reader caps %+v, %v", rc, err)
	}
}

// Each kind is one entry of the table, named by the scheme its parser reads: what it parses is
// what it opens.
func TestEveryKindReadsItsScheme(t *testing.T) {
	for scheme, raw := range map[string]string{"s3": "s3://bucket/p", "file": "file:///mnt/a", "sftp": "sftp://u@h.example.com/d",
		"azblob": "azblob://acct/container/p", "gs": "gs://bucket/p"} {
		k, ok := For(scheme)
		if !ok {
			t.Fatalf("no kind for %s://", scheme)
		}
		a := parse(t, k, raw)
		if a.Scheme != scheme || a.String() != raw {
			t.Errorf("%s parses to %+v (%s)", raw, a, a)
		}
	}
	if len(kinds) != 5 {
		t.Errorf("%d kinds, want s3, file, sftp, azblob and gs", len(kinds))
	}
}

// Only the kinds whose uploads buffer parts take memory: one S3 upload holds its parts in flight
// and the one being filled; without any such destination, the budget is one S3 upload's.
func TestUploadMemoryIsTheKinds(t *testing.T) {
	const part = 8 << 20
	s3a, s3b := s3store.Settings{Bucket: "a"}.Archive(), s3store.Settings{Bucket: "b"}.Archive()
	file, sftp := filestore.Settings{Dir: "/a"}.Archive(), sftpstore.Settings{Host: "h", Dir: "/d"}.Archive()
	for _, tc := range []struct {
		as        []spec.Archive
		bytes     int64
		buffering int
	}{
		{[]spec.Archive{s3a}, 3 * part, 1},
		{[]spec.Archive{s3a, file, s3b, sftp}, 6 * part, 2},
		{[]spec.Archive{file, sftp}, 3 * part, 0},
		{[]spec.Archive{s3a, gcsstore.Settings{Bucket: "g"}.Archive()}, 4 * part, 2}, // a resumable upload holds one chunk
		{nil, 3 * part, 0},
	} {
		if bytes, n := UploadMemory(tc.as, part, 2); bytes != tc.bytes || n != tc.buffering {
			t.Errorf("%v: %d bytes, %d buffering; want %d, %d", tc.as, bytes, n, tc.bytes, tc.buffering)
		}
	}
}

// parse is what k reads of raw, which must have no problem.
func parse(t *testing.T, k spec.Kind, raw string) spec.Archive {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var r spectest.Recorder
	a := k.Parse(u, r.Field(raw, 1, 1))
	if len(r.Problems) > 0 {
		t.Errorf("%s: %+v", raw, r.Problems)
	}
	return a
}
