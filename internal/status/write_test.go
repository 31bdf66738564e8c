package status

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Gather judges every target at every destination by the thresholds it then reports, as of
// the options' clock, in UTC.
func TestGather(t *testing.T) {
	o := opts()
	o.Zone, _ = time.LoadLocation("Europe/Berlin")
	o.MaxAge, o.MaxShrink = 26*time.Hour, 0.5
	dests := []Destination{{Name: "file:///archive", Open: func(context.Context) (Source, func() error, error) {
		return newBucket(), func() error { return nil }, nil
	}}}
	r := Gather(context.Background(), dests, []Target{{App: "shop", Database: "DATABASE"}}, o)
	if !r.GeneratedAt.Equal(o.Now) || r.GeneratedAt.Location() != time.UTC || r.Timezone != "Europe/Berlin" ||
		r.MaxAge != Duration(26*time.Hour) || r.MaxShrink != 0.5 {
		t.Errorf("report header %+v", r)
	}
	if len(r.Targets) != 1 || r.Targets[0].OK() {
		t.Errorf("an empty destination's entry: %+v", r.Targets)
	}
}

// Write writes text or JSON to its writer and, when asked, the HTML page to its file; a page
// that cannot be written is an error naming the file.
func TestWrite(t *testing.T) {
	r := Report{GeneratedAt: opts().Now, Timezone: "UTC", Targets: []Entry{
		Build(context.Background(), newBucket(), "file:///a", Target{App: "shop", Database: "DATABASE"}, opts())}}
	var text, js strings.Builder
	if err := Write(&text, false, "", r); err != nil || !strings.HasPrefix(text.String(), "shop:DATABASE at file:///a: PROBLEM\n") {
		t.Errorf("text: %v %q", err, text.String())
	}
	page := filepath.Join(t.TempDir(), "status.html")
	if err := Write(&js, true, page, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil || len(back.Targets) != 1 {
		t.Errorf("JSON %q: %v", js.String(), err)
	}
	if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), "<html") {
		t.Errorf("HTML page: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "gone", "status.html")
	if err := Write(&text, false, missing, r); err == nil || !strings.Contains(err.Error(), "write the HTML report "+missing) {
		t.Errorf("a page in a missing directory: %v", err)
	}
}

// CheckHTMLFile refuses a page whose directory does not exist, naming the directory.
func TestCheckHTMLFile(t *testing.T) {
	dir := t.TempDir()
	if err := CheckHTMLFile(filepath.Join(dir, "status.html")); err != nil {
		t.Errorf("existing directory: %v", err)
	}
	if err := CheckHTMLFile("status.html"); err != nil {
		t.Errorf("the working directory: %v", err)
	}
	err := CheckHTMLFile(filepath.Join(dir, "gone", "status.html"))
	if want := "the directory " + filepath.Join(dir, "gone") + " does not exist: create it or write the report elsewhere"; err == nil || err.Error() != want {
		t.Errorf("missing directory: %v, want %s", err, want)
	}
}
