package dest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// A destination that cannot be opened is logged once and fails its copies with the reason; the
// others open, in ARCHIVE_URL's order, and are counted.
func TestOpenAllGoesOnWithoutOne(t *testing.T) {
	dir := t.TempDir()
	broken := spec.Archive{Scheme: "webdav", Settings: filestore.Settings{Dir: "/x"}}
	var logs bytes.Buffer
	o := OpenAll(context.Background(), logging.New(&logs, "logfmt", "info", nil), env(nil),
		[]spec.Archive{broken, filestore.Settings{Dir: dir}.Archive()})
	defer o.Close()
	if o.N != 1 || len(o.Destinations) != 2 || len(o.Caps) != 2 {
		t.Fatalf("opened %d of %d (caps %d), want 1 of 2", o.N, len(o.Destinations), len(o.Caps))
	}
	if got := strings.Count(logs.String(), "cannot open the destination"); got != 1 {
		t.Errorf("logged the failure %d times:\n%s", got, logs.String())
	}
	err := o.Destinations[0].Store.Put(context.Background(), store.Object{Key: "a.dump"}, strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), `the destination could not be opened: unsupported archive scheme "webdav"`) {
		t.Errorf("Put to the broken destination: %v", err)
	}
	if got := o.Destinations[0].Store.Location("a.dump"); got != "file:///x/a.dump" {
		t.Errorf("Location = %q", got)
	}
	if err := o.Destinations[1].Store.Put(context.Background(), store.Object{Key: "a.dump", Size: 1}, strings.NewReader("x")); err != nil {
		t.Fatalf("Put to the directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.dump")); err != nil || string(b) != "x" {
		t.Errorf("the directory holds %q, %v", b, err)
	}
	if o.Destinations[1].Remove == nil || o.Destinations[1].Markers == nil {
		t.Error("the directory's destination lacks Remove or Markers")
	}
	if got := Names([]spec.Archive{broken}); len(got) != 1 || got[0] != "file:///x" {
		t.Errorf("Names = %q", got)
	}
}

// A source reads what a destination holds and closes what its kind opened.
func TestOpenSourceReads(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k"), []byte("body"), 0o600)
	src, err := OpenSource(context.Background(), env(nil), filestore.Settings{Dir: dir}.Archive())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, _, err := src.Open(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	b.ReadFrom(r)
	if b.String() != "body" || src.Caps.Records == nil {
		t.Errorf("read %q, records %v", b.String(), src.Caps.Records)
	}
	if _, err := OpenSource(context.Background(), env(nil), spec.Archive{Scheme: "webdav"}); err == nil {
		t.Error("OpenSource of an unknown scheme succeeded")
	}
}
