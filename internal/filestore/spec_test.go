package filestore

import (
	"net/url"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

// A directory must be absolute, and never the root of the filesystem.
func TestParserReadsAbsoluteDirectories(t *testing.T) {
	for raw, want := range map[string]string{
		"file:///mnt//archive/": "/mnt/archive",
		"file:///":              "",
		"file://host/mnt":       "",
	} {
		var r spectest.Recorder
		u, _ := url.Parse(raw)
		a := Parser{}.Parse(u, r.Field(raw, 1, 1))
		s, _ := a.Settings.(Settings)
		if a.Scheme != "file" || s.Dir != want || (want == "") != (len(r.Problems) == 1) {
			t.Errorf("%s: %+v, problems %+v", raw, a, r.Problems)
		}
	}
}
