package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/notify"
	"github.com/pgoffsite/pgoffsite/internal/status"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A target whose archive was partly checked for framing only is marked so in its summary line and
// in the webhook; a fully checked one is not.
func TestSummaryMarksFramingOnly(t *testing.T) {
	results := []archive.Result{
		{Target: archive.Target{App: "shop", Database: "DATABASE_URL"}, Backup: "b042", Bytes: 1 << 30, Location: "s3://b/k.dump",
			FramingOnly: []string{"public.events"}, OtherFramingOnly: 1, Decompressed: "412.0 MiB of 1.00 GiB of compressed data (40.2%)"},
		{Target: archive.Target{App: "blog", Database: "DATABASE_URL"}, Backup: "b007", Bytes: 1 << 20, Location: "s3://b/j.dump"},
	}
	var logs bytes.Buffer
	if code := Backup(zerolog.New(&logs), results, false); !code {
		t.Fatal("the run failed")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), logs.String())
	}
	var shop, blog map[string]any
	if json.Unmarshal([]byte(lines[0]), &shop) != nil || json.Unmarshal([]byte(lines[1]), &blog) != nil {
		t.Fatalf("not JSON:\n%s", logs.String())
	}
	if shop["message"] != "summary: archived, partly checked for framing only" || shop["framing_only_other"] != 1.0 ||
		shop["decompressed"] != "412.0 MiB of 1.00 GiB of compressed data (40.2%)" ||
		!strings.Contains(lines[0], `"framing_only_tables":["public.events"]`) || !strings.Contains(lines[0], "pgoffsite verify") {
		t.Errorf("summary line of a partly checked archive: %s", lines[0])
	}
	if blog["message"] != "summary: archived" || strings.Contains(lines[1], "framing") {
		t.Errorf("summary line of a fully checked archive: %s", lines[1])
	}

	rec := testenv.NewReceiver(t)
	n, err := notify.New(notify.Options{WebhookURL: rec.URL + "/hook", On: "always"})
	if err != nil {
		t.Fatal(err)
	}
	Finish(context.Background(), zerolog.Nop(), n, "backup", time.Now(), results)
	var p notify.Payload
	if err := json.Unmarshal([]byte(rec.Bodies()["/hook"]), &p); err != nil || len(p.Targets) != 2 {
		t.Fatalf("webhook %s: %v", rec.Bodies()["/hook"], err)
	}
	if got := p.Targets[0]; len(got.FramingOnly) != 1 || got.FramingOnly[0] != "public.events" || got.OtherFramingOnly != 1 {
		t.Errorf("webhook target %+v", got)
	}
	if got := p.Targets[1]; got.FramingOnly != nil || got.OtherFramingOnly != 0 {
		t.Errorf("webhook target %+v", got)
	}
}

// A verification logs each failed archive like a backup's failed target, and a total line; it
// fails when an archive failed or the run was interrupted.
func TestVerifySummary(t *testing.T) {
	ok := archive.Result{Target: archive.Target{App: "shop", Database: "DATABASE_URL"}, Backup: "b042"}
	bad := archive.Result{Target: archive.Target{App: "blog", Database: "DATABASE_URL"}, Backup: "b007", Err: errors.New("SHA-256 differs")}
	var logs bytes.Buffer
	if Verify(zerolog.New(&logs), []archive.Result{ok, bad}, false) {
		t.Error("a failed archive passed")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"app":"blog"`) || !strings.Contains(lines[0], `"message":"summary: FAILED"`) ||
		!strings.Contains(lines[1], `"archives":2,"failed":1,"message":"verify finished"`) || !strings.Contains(lines[1], `"level":"error"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
	if !Verify(zerolog.Nop(), []archive.Result{ok}, false) || Verify(zerolog.Nop(), []archive.Result{ok}, true) {
		t.Error("a passed or an interrupted verification")
	}
}

// A status report becomes one result per entry; each entry with a problem fails and is logged.
func TestStatusResults(t *testing.T) {
	rep := status.Report{Targets: []status.Entry{
		{App: "shop", Database: "DATABASE_URL", Destination: "s3://b/pg", Newest: &status.Newest{Backup: "b042", Bytes: 10}},
		{App: "blog", Database: "DATABASE_URL", Destination: "s3://b/pg", Problems: []string{"no archive", "too old"}},
	}}
	var logs bytes.Buffer
	results, problems := Status(zerolog.New(&logs), rep)
	if problems != 1 || len(results) != 2 || results[0].Err != nil || results[0].Backup != "b042" || results[0].Bytes != 10 ||
		results[1].Err == nil || results[1].Err.Error() != "no archive; too old" {
		t.Fatalf("%d problems, results %+v", problems, results)
	}
	if !strings.Contains(logs.String(), `"message":"status: PROBLEM"`) || strings.Contains(logs.String(), `"app":"shop"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}
