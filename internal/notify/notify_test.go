package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func setup(t *testing.T, on string) (*Notifier, *testenv.Receiver, string) {
	rec := testenv.NewReceiver(t)
	n, err := New(Options{HeartbeatURL: rec.URL + "/ping/abc-key", WebhookURL: rec.URL + "/hook", On: on, Timeout: 300 * time.Millisecond,
		Secrets: []string{"hrku-topsecret-key"}})
	if err != nil {
		t.Fatal(err)
	}
	return n, rec, rec.URL
}

var okRun = Run{Command: "backup", Results: []TargetResult{{App: "shop", Database: "DATABASE_URL", Backup: "b042", Bytes: 1234, Location: "s3://b/k.dump"}}}
var failedRun = Run{Command: "backup", Results: []TargetResult{
	{App: "shop", Database: "DATABASE_URL", Backup: "b042", Bytes: 1234},
	{App: "shop", Database: "HEROKU_POSTGRESQL_PINK", Error: "heroku: resolve: 401 the API key hrku-topsecret-key is invalid; url https://x/y?X-Amz-Signature=abcdef postgres://u:pw@h/db"},
}}

func TestSuccessPingsAndWebhookOnlyWhenAlways(t *testing.T) {
	n, rec, _ := setup(t, "failure")
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Finish(context.Background(), okRun); err != nil {
		t.Fatal(err)
	}
	if got := rec.Seen(); got != "POST /ping/abc-key/start,POST /ping/abc-key" {
		t.Errorf("requests: %s", got)
	}
	n, rec, _ = setup(t, "always")
	n.Finish(context.Background(), okRun)
	if got := rec.Seen(); got != "POST /ping/abc-key,POST /hook" {
		t.Errorf("requests with NOTIFY_ON=always: %s", got)
	}
	var p Payload
	if err := json.Unmarshal([]byte(rec.Bodies()["/hook"]), &p); err != nil || p.SchemaVersion != 1 || p.Status != "succeeded" || len(p.Targets) != 1 {
		t.Errorf("payload %+v %v", p, err)
	}
}

func TestFailurePingsFailAndSendsCauseWithoutSecrets(t *testing.T) {
	n, rec, _ := setup(t, "failure")
	n.Finish(context.Background(), failedRun)
	if got := rec.Seen(); got != "POST /ping/abc-key/fail,POST /hook" {
		t.Errorf("requests: %s", got)
	}
	for path, body := range rec.Bodies() {
		if !strings.Contains(body, "HEROKU_POSTGRESQL_PINK") || !strings.Contains(body, "401") {
			t.Errorf("%s lacks the failed target and its cause: %s", path, body)
		}
		for _, secret := range []string{"hrku-topsecret-key", "abcdef", ":pw@"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s leaks %q: %s", path, secret, body)
			}
		}
	}
	var p Payload
	json.Unmarshal([]byte(rec.Bodies()["/hook"]), &p)
	if p.Status != "failed" || p.Targets[1].Error == "" {
		t.Errorf("payload %+v", p)
	}
}

func TestSlackShape(t *testing.T) {
	n := &Notifier{o: Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}}
	b, err := n.webhookBody(failedRun)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	json.Unmarshal(b, &m)
	if len(m) != 1 || !strings.Contains(m["text"], ":x: `shop:HEROKU_POSTGRESQL_PINK`") || !strings.Contains(m["text"], "failed") {
		t.Errorf("slack body %s", b)
	}
}

func TestSlowOrDownEndpointIsBounded(t *testing.T) {
	n, rec, _ := setup(t, "always")
	rec.Answer(2*time.Second, 0)
	start := time.Now()
	err := n.Finish(context.Background(), failedRun)
	if err == nil || time.Since(start) > 1800*time.Millisecond {
		t.Errorf("err %v after %s; want an error within the bound", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "abc-key") {
		t.Errorf("the ping key leaked into the error: %v", err)
	}
	down, _ := New(Options{HeartbeatURL: "http://127.0.0.1:1/ping", Timeout: 200 * time.Millisecond})
	if err := down.Finish(context.Background(), okRun); err == nil {
		t.Error("a down monitor reported no error")
	}
	if err := Reach(context.Background(), "VERIFY_HEARTBEAT_URL", "http://127.0.0.1:1/ping", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "VERIFY_HEARTBEAT_URL") {
		t.Errorf("reach: %v", err)
	}
}

func TestNewRefusesPlainHTTP(t *testing.T) {
	if _, err := New(Options{WebhookURL: "http://example.com/hook"}); err == nil {
		t.Error("plain http accepted")
	}
}

// A target whose archive was partly checked for framing only says so in the webhook's JSON, in
// Slack's text and in the heartbeat's summary, not only in the manifest.
func TestFramingOnlyIsReported(t *testing.T) {
	run := Run{Command: "backup", Results: []TargetResult{{App: "shop", Database: "DATABASE_URL", Backup: "b042", Bytes: 1234,
		Location: "s3://b/k.dump", FramingOnly: []string{"public.events"}, OtherFramingOnly: 2}}}
	n, rec, _ := setup(t, "always")
	if err := n.Finish(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal([]byte(rec.Bodies()["/hook"]), &p); err != nil || len(p.Targets) != 1 {
		t.Fatalf("payload %s: %v", rec.Bodies()["/hook"], err)
	}
	if got := p.Targets[0]; fmt.Sprint(got["framing_only_tables"]) != "[public.events]" || got["framing_only_other"] != 2.0 {
		t.Errorf("webhook target %v; want framing_only_tables [public.events] and framing_only_other 2", got)
	}
	want := "checked for framing only, not decompressed (run pgoffsite verify): tables public.events and 2 large object(s) or other data"
	if ping := rec.Bodies()["/ping/abc-key"]; !strings.Contains(ping, want) {
		t.Errorf("heartbeat summary %q lacks %q", ping, want)
	}
	slack := &Notifier{o: Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}}
	if b, err := slack.webhookBody(run); err != nil || !strings.Contains(string(b), want) {
		t.Errorf("slack %s, %v; want %q", b, err, want)
	}
	// Fully checked targets carry neither field.
	if b, _ := n.webhookBody(okRun); strings.Contains(string(b), "framing_only") {
		t.Errorf("a fully checked target mentions framing: %s", b)
	}
}

// A target whose copy failed at one destination says, in the heartbeat's summary and in Slack,
// where it is stored and where it failed.
func TestFailedCopyIsNamed(t *testing.T) {
	run := Run{Command: "backup", Results: []TargetResult{{App: "shop", Database: "DATABASE_URL", Backup: "b042", Bytes: 1234,
		Error: "archive: 1 of 2 copies failed", Copies: []Copy{
			{Destination: "s3://b/p", Location: "s3://b/p/k.dump", Status: "archived"},
			{Destination: "sftp://u@vps/srv", Status: "failed", Error: "refused"}}}}}
	want := "(stored at s3://b/p/k.dump; failed at sftp://u@vps/srv)"
	if s := Summary(run); !strings.Contains(s, want) {
		t.Errorf("summary %q lacks %q", s, want)
	}
	slack := &Notifier{o: Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}}
	if b, err := slack.webhookBody(run); err != nil || !strings.Contains(string(b), want) {
		t.Errorf("slack %s, %v; want %q", b, err, want)
	}
}

// A run reports as its own command: a bundle run's Slack text, JSON and heartbeat summary say
// bundle, not backup.
func TestRunNamesItsCommand(t *testing.T) {
	run := Run{Command: "bundle", Results: []TargetResult{{App: "shop", Database: "_app", Backup: "v42", Bytes: 10}}}
	slack := &Notifier{o: Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}}
	b, err := slack.webhookBody(run)
	if err != nil || !strings.Contains(string(b), "*pgoffsite bundle succeeded*") {
		t.Errorf("slack %s, %v", b, err)
	}
	plain := &Notifier{o: Options{WebhookURL: "https://example.com/hook"}}
	if b, err := plain.webhookBody(run); err != nil || !strings.Contains(string(b), `"command":"bundle"`) {
		t.Errorf("webhook %s, %v", b, err)
	}
	if s := Summary(run); !strings.HasPrefix(s, "pgoffsite bundle succeeded") {
		t.Errorf("summary %q", s)
	}
}

// A run of verify, status or drill says so in Slack's text and in the heartbeat's summary:
// whoever reads the alert learns which job failed, not "pgoffsite failed".
func TestTextNamesTheCommand(t *testing.T) {
	slack := &Notifier{o: Options{WebhookURL: "https://hooks.slack.com/services/T/B/X"}}
	for _, command := range []string{"backup", "bundle", "verify", "status", "drill"} {
		run := failedRun
		run.Command = command
		b, err := slack.webhookBody(run)
		var m map[string]string
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if want := "*pgoffsite " + command + " failed*"; err != nil || !strings.HasPrefix(m["text"], want) {
			t.Errorf("%s: slack text %q (%v), want it to start with %q", command, m["text"], err, want)
		}
		if want := "pgoffsite " + command + " FAILED"; !strings.HasPrefix(Summary(run), want) {
			t.Errorf("%s: summary %q, want it to start with %q", command, Summary(run), want)
		}
	}
}
