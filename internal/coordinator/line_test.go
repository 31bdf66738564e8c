package coordinator

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// The result line reads back the same from either log format the child may write, quoting and
// line breaks in the error included.
func TestResultLineRoundTrip(t *testing.T) {
	for _, format := range []string{"logfmt", "json"} {
		var buf bytes.Buffer
		log := logging.New(&buf, format, "info", nil)
		log.Info().Str("app", "shop").Str("database", "DATABASE_URL").Str("status", "failed").Str("backup", "b042").
			Int64("bytes", 1234).Str("location", "s3://b/k.dump").Str("error", "archive: upload \"x\" = y\nsecond line").Msg(ResultMessage)
		f := Fields(strings.TrimSpace(buf.String()))
		if f["msg"] != ResultMessage {
			t.Fatalf("%s: %q → %v", format, buf.String(), f)
		}
		r := resultOf(archive.Target{App: "shop", Database: "DATABASE_URL"}, f)
		if r.Backup != "b042" || r.Bytes != 1234 || r.Location != "s3://b/k.dump" || r.Err == nil || r.Err.Error() != "archive: upload \"x\" = y\nsecond line" {
			t.Errorf("%s: %+v", format, r)
		}
	}
	if f := Fields("Starting process with command `pgoffsite backup`"); f["msg"] == ResultMessage {
		t.Error("a plain line read as a result")
	}
	ok := resultOf(archive.Target{}, map[string]string{"status": "already archived"})
	if ok.Err != nil || !ok.AlreadyArchived {
		t.Errorf("%+v", ok)
	}
	if r := resultOf(archive.Target{}, map[string]string{"status": "odd"}); r.Err == nil {
		t.Error("an unknown status is not a success")
	}
}
