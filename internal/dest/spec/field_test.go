package spec_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

// A destination's label names its position and host, never its credentials or query.
func TestFieldNamesTheDestinationWithoutSecrets(t *testing.T) {
	var r spectest.Recorder
	f := r.Field("sftp://backup:hunter2@vps.example.com/srv?key=K#x", 2, 3)
	if got := f.Label(); got != "destination 2 (sftp://vps.example.com): " {
		t.Errorf("Label = %q", got)
	}
	if got := f.Shown(); got != `"sftp://backup@vps.example.com/srv"` {
		t.Errorf("Shown = %s", got)
	}
	if got := r.Field("file:///mnt/a", 1, 2).Name(); got != "destination 1 (file:///mnt/a)" {
		t.Errorf("Name = %q", got)
	}
	if got := r.Field("s3://b", 1, 1).Name(); got != "destination" {
		t.Errorf("Name of the only one = %q", got)
	}
}

// Parameters are read once each and only when known; an unknown one is named, never its value.
func TestFieldQuery(t *testing.T) {
	var r spectest.Recorder
	f := r.Field("s3://b?region=x&region=y&secret=hunter2&keys=B2", 1, 1)
	u, _ := url.Parse(f.Raw)
	q := f.Query(u, []string{"region", "keys"}, "fix")
	if len(q) != 1 || q["keys"] != "B2" {
		t.Errorf("query %v", q)
	}
	if len(r.Problems) != 2 {
		t.Fatalf("problems %+v", r.Problems)
	}
	for _, p := range r.Problems {
		if p.Var != "ARCHIVE_URL" || p.Fix != "fix" || p.Msg == "" || strings.Contains(p.Msg, "hunter2") {
			t.Errorf("problem %+v", p)
		}
	}
}
