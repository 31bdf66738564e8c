package coordinator

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

var shop = archive.Target{App: "shop", Database: "DATABASE_URL"}

func noScrub(s string) string { return s }

// A result reads back the same, copies, quotes and line breaks in the errors included, from
// one line.
func TestResultLineRoundTrip(t *testing.T) {
	r := archive.Result{Target: shop, Backup: "b042", Bytes: 1234, Location: "s3://b/k.dump",
		Err: errors.New("archive: upload \"x\" = y\nsecond line"),
		Copies: []archive.Copy{{Destination: "s3://b", Location: "s3://b/k.dump"},
			{Destination: "sftp://h/d", Err: errors.New("sftp: <refused> & gone")}}}
	b := ResultLine(r, noScrub)
	if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasPrefix(b, []byte(`{"pgoffsite_result":1,`)) {
		t.Fatalf("not one line of the schema: %s", b)
	}
	l, ok := parseLine(shop, string(b))
	if !ok || l.err != nil || l.result == nil {
		t.Fatalf("%s → %+v %v", b, l, ok)
	}
	got := l.result
	if got.Backup != "b042" || got.Bytes != 1234 || got.Location != "s3://b/k.dump" || got.Err == nil || got.Err.Error() != r.Err.Error() {
		t.Errorf("%+v", got)
	}
	if len(got.Copies) != 2 || got.Copies[0].Err != nil || got.Copies[0].Location != "s3://b/k.dump" ||
		got.Copies[1].Err == nil || got.Copies[1].Err.Error() != "sftp: <refused> & gone" || got.Copies[1].Destination != "sftp://h/d" {
		t.Errorf("copies %+v", got.Copies)
	}

	l, _ = parseLine(shop, string(ResultLine(archive.Result{Target: shop, AlreadyArchived: true}, noScrub)))
	if l.result == nil || l.result.Err != nil || !l.result.AlreadyArchived {
		t.Errorf("already archived: %+v", l.result)
	}
	l, _ = parseLine(shop, `{"pgoffsite_result":1,"app":"shop","database":"DATABASE_URL","status":"odd","bytes":0}`)
	if l.result == nil || l.result.Err == nil || !strings.Contains(l.result.Err.Error(), "status odd") {
		t.Errorf("an unknown status is not a success: %+v", l.result)
	}
}

// What is not a line of the schema is ignored: the child's log lines, in either format, even
// when they quote a result line.
func TestOtherLinesAreIgnored(t *testing.T) {
	var buf bytes.Buffer
	for _, format := range []string{"logfmt", "json"} {
		log := logging.New(&buf, format, "info", nil)
		log.Info().Str("line", `{"pgoffsite_result":1}`).Msg("child result")
	}
	for _, text := range append(strings.Split(strings.TrimSpace(buf.String()), "\n"), "Starting process with command `pgoffsite backup`", "", "{") {
		if l, ok := parseLine(shop, text); ok {
			t.Errorf("%q read as %+v", text, l)
		}
	}
}

// A line of another version, or none, is an error that says what to do; so is a damaged one.
func TestUnknownVersion(t *testing.T) {
	for text, want := range map[string]string{
		`{"pgoffsite_result":2,"app":"shop","status":"archived"}`:      "result line of version 2; this coordinator reads version 1",
		`{"pgoffsite_result":null,"app":"shop","status":"archived"}`:   "result line of no version",
		`{"pgoffsite_upload":7,"location":"s3://b/k","upload_id":"x"}`: "upload line of version 7",
		`{"pgoffsite_result":1,"app":"sh`:                              "cut or damaged",
	} {
		l, ok := parseLine(shop, text)
		if !ok || l.err == nil || !strings.Contains(l.err.Error(), want) || l.result != nil || l.upload != nil {
			t.Errorf("%s: %+v, want an error saying %q", text, l, want)
		}
	}
	l, _ := parseLine(shop, `{"pgoffsite_result":1,"app":"cart","database":"DATABASE_URL","status":"archived","bytes":1}`)
	if l.result != nil || l.err == nil || !strings.Contains(l.err.Error(), "not this target's result") {
		t.Errorf("another target's result is taken as this one's: %+v", l)
	}
	l, _ = parseLine(shop, `{"pgoffsite_result":2}`)
	if !strings.Contains(l.err.Error(), "deploy one release") {
		t.Errorf("no fix: %v", l.err)
	}
}

func TestUploadLine(t *testing.T) {
	b := UploadLine("s3://b/pgbackups/shop/x.dump", "2~abc.def")
	l, ok := parseLine(shop, string(b))
	if !ok || l.upload == nil || l.upload.Location != "s3://b/pgbackups/shop/x.dump" || l.upload.UploadID != "2~abc.def" || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("%s → %+v", b, l)
	}
}

// A result with many copies and long errors stays under Heroku's split: the errors are
// shortened, never what the coordinator needs; a secret is scrubbed before any cut, so that no
// part of it survives.
func TestResultLineFitsHerokusLimit(t *testing.T) {
	const secret = "hrku-0123456789abcdef-SECRET"
	long := strings.Repeat("é (a long error) ", 2000)
	r := archive.Result{Target: shop, Backup: "b042", Bytes: 1 << 40, Location: "s3://bucket/" + strings.Repeat("p/", 100) + "k.dump",
		Err: errors.New(long[:MaxLine/2-3] + secret + long)}
	for i := range 30 {
		r.Copies = append(r.Copies, archive.Copy{Destination: fmt.Sprintf("s3://bucket-%d", i), Location: fmt.Sprintf("s3://bucket-%d/k.dump", i),
			Err: errors.New(secret + long)})
	}
	b := ResultLine(r, scrub.New(secret).Scrub)
	if len(b) > MaxLine || MaxLine >= 10000 {
		t.Fatalf("%d bytes, over %d", len(b), MaxLine)
	}
	for n := 6; n <= len(secret); n++ {
		if bytes.Contains(b, []byte(secret[:n])) {
			t.Fatalf("%d bytes of the secret in the line", n)
		}
	}
	l, _ := parseLine(shop, string(b))
	got := l.result
	if got == nil || got.Backup != "b042" || got.Bytes != 1<<40 || got.Location != r.Location || got.Err == nil ||
		!strings.HasSuffix(got.Err.Error(), "… (shortened)") || !strings.HasPrefix(got.Err.Error(), long[:100]) {
		t.Fatalf("%+v", got)
	}
	if len(got.Copies) != 30 || got.Copies[29].Location != "s3://bucket-29/k.dump" || got.Copies[29].Err == nil {
		t.Errorf("copies %+v", got.Copies)
	}

	// Copies too many to fit even without their errors are left out; the rest stays.
	for i := range 300 {
		r.Copies = append(r.Copies, archive.Copy{Destination: fmt.Sprintf("s3://more-%d", i), Location: fmt.Sprintf("s3://more-%d/%s", i, strings.Repeat("k", 40))})
	}
	b = ResultLine(r, noScrub)
	l, _ = parseLine(shop, string(b))
	if len(b) > MaxLine || l.result == nil || l.result.Location != r.Location || l.result.Copies != nil {
		t.Errorf("%d bytes: %+v", len(b), l.result)
	}
}
