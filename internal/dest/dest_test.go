package dest

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/schemes"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

func TestUnknownSchemeIsRefused(t *testing.T) {
	_, _, err := Open(context.Background(), config.Config{}, spec.Archive{Scheme: "gs"})
	if err == nil || !strings.Contains(err.Error(), `unsupported archive scheme "gs"`) {
		t.Errorf("Open: %v", err)
	}
	if _, err := OpenReader(context.Background(), config.Config{}, spec.Archive{Scheme: "gs"}); err == nil {
		t.Error("OpenReader of an unknown scheme succeeded")
	}
}

// A directory opens with what it can do, for writing and for reading alike.
func TestFileKindDeclaresItsCaps(t *testing.T) {
	a := spec.Archive{Scheme: "file", Dir: t.TempDir()}
	st, c, err := Open(context.Background(), config.Config{}, a)
	if err != nil || st == nil {
		t.Fatalf("Open: %v", err)
	}
	if c.Reader == nil || c.Markers == nil || c.Records == nil || c.Stale == nil || c.Remove == nil || c.Abort != nil {
		t.Errorf("caps %+v", c)
	}
	rc, err := OpenReader(context.Background(), config.Config{}, a)
	if err != nil || rc.Reader == nil || rc.Records == nil {
		t.Errorf("OpenReader: %+v, %v", rc, err)
	}
}

// The S3 uploader may not read or delete; the reader reads and keeps records.
func TestS3KindSplitsWriterAndReader(t *testing.T) {
	a := spec.Archive{Scheme: "s3", Bucket: "b", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9"}
	_, c, err := Open(context.Background(), config.Config{}, a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Reader != nil || c.Remove != nil || c.Markers == nil || c.Abort == nil || c.ConditionalWritesUnsupported == nil {
		t.Errorf("writer caps %+v", c)
	}
	rc, err := OpenReader(context.Background(), config.Config{}, a)
	if err != nil || rc.Reader == nil || rc.Records == nil || rc.Markers != nil {
		t.Errorf("reader caps %+v, %v", rc, err)
	}
}

// Every kind that opens destinations can be named in ARCHIVE_URL: the configuration check has
// its parser.
func TestEveryKindHasAParser(t *testing.T) {
	for scheme := range kinds {
		if _, ok := schemes.Parser(scheme); !ok {
			t.Errorf("%s:// opens but has no parser in dest/schemes", scheme)
		}
	}
}
