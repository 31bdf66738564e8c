package status

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A destination that cannot be opened makes a problem of each of its targets, the others are
// reported, and what is opened is closed; Scrub reaches every problem.
func TestCollect(t *testing.T) {
	closed := 0
	dests := []Destination{
		{Name: "sftp://host/pg", Open: func(context.Context) (Source, func() error, error) {
			return nil, nil, errors.New("connection refused by secret-host")
		}},
		{Name: "file:///archive", Open: func(context.Context) (Source, func() error, error) {
			return newBucket(), func() error { closed++; return nil }, nil
		}},
	}
	targets := []Target{{App: "shop", Database: "DATABASE"}, {App: "blog", Database: "DATABASE"}}
	r := Report{Targets: Collect(context.Background(), dests, targets, opts())}
	if len(r.Targets) != 4 || closed != 1 {
		t.Fatalf("%d entries, closed %d times", len(r.Targets), closed)
	}
	for _, e := range r.Targets[:2] {
		if e.OK() || e.Destination != "sftp://host/pg" || e.Problems[0] != "cannot open sftp://host/pg: connection refused by secret-host" {
			t.Errorf("entry of the destination that cannot be opened: %+v", e)
		}
	}
	if e := r.Targets[2]; e.Destination != "file:///archive" || e.App != "shop" {
		t.Errorf("entry of the open destination: %+v", e)
	}
	r.Scrub(func(s string) string { return strings.ReplaceAll(s, "secret-host", "[REDACTED]") })
	if strings.Contains(r.Targets[0].Problems[0], "secret-host") {
		t.Errorf("not scrubbed: %q", r.Targets[0].Problems[0])
	}
}

// The HTML report is written whole, readable by a web server, and leaves no temporary file.
func TestWriteHTMLFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.html")
	if err := WriteHTMLFile(path, Report{Targets: []Entry{Build(context.Background(), newBucket(), "file:///a", Target{App: "shop", Database: "DATABASE"}, opts())}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%v %v", fi, err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("files left: %v", names)
	}
	if err := WriteHTMLFile(filepath.Join(dir, "missing", "status.html"), Report{}); err == nil {
		t.Error("no error for a directory that does not exist")
	}
}
