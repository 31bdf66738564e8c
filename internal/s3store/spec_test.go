package s3store

import (
	"net/url"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

// A destination's parameters are its own; a keys= that is not a variable's name is refused
// and dropped, so that nothing reads a pasted key as a name.
func TestParserReadsParameters(t *testing.T) {
	var r spectest.Recorder
	raw := "s3://b2-archive//db//prod/?endpoint=https://s3.example.com&region=eu-central-003&path_style=true&keys=not-a-name"
	u, _ := url.Parse(raw)
	d := Parser{}.Parse(u, r.Field(raw, 1, 1))
	a, ok := SettingsOf(d)
	if !ok || a.Bucket != "b2-archive" || a.Prefix != "db/prod" || a.Endpoint != "https://s3.example.com" || a.Region != "eu-central-003" ||
		a.PathStyle == nil || !*a.PathStyle || a.Keys != "" {
		t.Errorf("archive %+v", a)
	}
	if len(r.Problems) != 1 || r.Problems[0].Msg != "keys= does not name variables" {
		t.Errorf("problems %+v", r.Problems)
	}
}

// The same bucket and prefix at another endpoint is another destination; keys=NAME's pair is
// secret and checked once.
func TestParserIdentityAndKeys(t *testing.T) {
	p := Parser{}
	s := Settings{Bucket: "b", Keys: "B2"}
	a := s.Archive()
	s.Endpoint = "https://S3.example.com/"
	b := s.Archive()
	if a.Settings.Identity() == b.Settings.Identity() {
		t.Error("another endpoint, the same identity")
	}
	if got := a.SecretVars(); len(got) != 2 || got[0] != "B2_ACCESS_KEY_ID" || got[1] != "B2_SECRET_ACCESS_KEY" {
		t.Errorf("SecretVars = %v", got)
	}
	var r spectest.Recorder
	check := p.EnvChecker(func(k string) string { return map[string]string{"B2_ACCESS_KEY_ID": "id"}[k] })
	check(a, r.Field("s3://b?keys=B2", 1, 2))
	check(b, r.Field("s3://b?keys=B2", 2, 2))
	if len(r.Problems) != 1 || r.Problems[0].Var != "B2_SECRET_ACCESS_KEY" ||
		r.Problems[0].Msg != "not set, and ARCHIVE_URL's destination 1 (s3://b) has keys=B2" {
		t.Errorf("problems %+v", r.Problems)
	}
}

// checksum= takes the five values, any case; another is refused without being quoted (a pasted
// secret stays out of the message), and the destination keeps auto.
func TestParserChecksum(t *testing.T) {
	for raw, want := range map[string]Checksum{"MD5": ChecksumMD5, "crc32c": ChecksumCRC32C, "sha256": ChecksumSHA256, "none": ChecksumNone, "auto": ChecksumAuto, "s3cr3t": ""} {
		var r spectest.Recorder
		u, _ := url.Parse("s3://archive-bucket?checksum=" + raw)
		a, _ := SettingsOf(Parser{}.Parse(u, r.Field(u.String(), 1, 1)))
		bad := want == ""
		if a.Checksum != want || (len(r.Problems) == 1) != bad {
			t.Errorf("checksum=%s: %q, problems %+v", raw, a.Checksum, r.Problems)
		}
		if bad && (r.Problems[0].Msg != "checksum= is none of auto, sha256, crc32c, md5, none" || strings.Contains(r.Problems[0].Fix, raw)) {
			t.Errorf("checksum=%s: %+v", raw, r.Problems[0])
		}
	}
}
