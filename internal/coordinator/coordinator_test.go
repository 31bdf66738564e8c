package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

const simKey = "hrku-coordinator-test-key"

// onSim is a coordinator of app "backups" on the Heroku simulator whose children run script
// with sh, at most one at a time, with short waits.
func onSim(t *testing.T, script string, ttl time.Duration) (*Coordinator, *herokusim.Sim, *testenv.Output) {
	t.Helper()
	sim := herokusim.New(herokusim.Options{Token: simKey})
	platform, _ := herokusim.Serve(t, sim)
	sim.AddApp("backups")
	sim.SetDynoCommand("child", "/bin/sh")
	sim.SetStopGrace(10 * time.Second)
	f := filepath.Join(t.TempDir(), "child.sh")
	if err := os.WriteFile(f, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Output{}
	return &Coordinator{
		API:     heroku.New(heroku.Options{APIKey: simKey, PlatformURL: platform}),
		App:     "backups",
		Command: func(archive.Target) string { return "child " + f },
		Size:    "standard-1X",
		TTL:     ttl,
		TTLFix:  "the time to live is twice BACKUP_CAPTURE_TIMEOUT (1s): raise BACKUP_CAPTURE_TIMEOUT",
		N:       1,
		Log:     zerolog.New(logs),
		Poll:    100 * time.Millisecond, Drain: time.Second, RetryBase: 100 * time.Millisecond, RetryCap: 500 * time.Millisecond,
	}, sim, logs
}

func runOne(t *testing.T, c *Coordinator) archive.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs := c.Run(ctx, []archive.Target{{App: "shop", Database: "DATABASE_URL"}})
	if ctx.Err() != nil {
		t.Fatal("the coordinator did not end within two minutes")
	}
	return rs[0]
}

// A child Heroku stops at its time to live (the simulator sends SIGTERM when it passes, as
// Heroku does) is reported as stopped at its time to live, with what sets it — whether it wrote
// nothing or reported its own interruption — not as a crash.
func TestDynoStoppedAtItsTimeToLive(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
	}{
		{"silent", "while :; do sleep 0.1; done\n", "the dyno was stopped at its time to live (1s) before it wrote its result; the time to live is twice BACKUP_CAPTURE_TIMEOUT (1s): raise BACKUP_CAPTURE_TIMEOUT"},
		{"reports its interruption", `trap 'echo "{\"pgoffsite_result\":1,\"app\":\"shop\",\"database\":\"DATABASE_URL\",\"status\":\"failed\",\"bytes\":0,\"error\":\"archive: the run was interrupted (SIGTERM)\"}"; exit 143' TERM
while :; do sleep 0.1; done
`, "the dyno was stopped at its time to live (1s) and reported: archive: the run was interrupted (SIGTERM); the time to live is twice BACKUP_CAPTURE_TIMEOUT (1s): raise BACKUP_CAPTURE_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sim, logs := onSim(t, tc.script, time.Second)
			r := runOne(t, c)
			if r.Err == nil || !strings.Contains(r.Err.Error(), tc.want) || strings.Contains(r.Err.Error(), "crashed") {
				t.Fatalf("err = %v\nwant %q\nlog:\n%s", r.Err, tc.want, logs)
			}
			for _, d := range sim.Dynos() {
				if d.TTL != 1 || !d.Stopped {
					t.Errorf("dyno %s: time to live %d s, stopped %v: want 1 s, stopped by it", d.Name, d.TTL, d.Stopped)
				}
			}
		})
	}
}

// A child that ends long before its time to live without a result keeps the message of a crash.
func TestDynoCrashedBeforeItsTimeToLive(t *testing.T) {
	c, sim, logs := onSim(t, "echo starting\nexit 1\n", time.Hour)
	r := runOne(t, c)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "the dyno ended without writing its result (crashed, out of memory, or stopped)") ||
		strings.Contains(r.Err.Error(), "time to live") {
		t.Fatalf("err = %v\nlog:\n%s", r.Err, logs)
	}
	if n := len(sim.Dynos()); n != 2 {
		t.Errorf("%d dynos, want 2 (started once more)", n)
	}
}

// A child's result line of many copies and a long error crosses Heroku's logs (which split
// lines over 10,000 bytes) whole, among log lines of either format; the uploads it named are
// not aborted once it reported.
func TestResultLineThroughHerokusLogs(t *testing.T) {
	r := archive.Result{Target: archive.Target{App: "shop", Database: "DATABASE_URL"}, Backup: "b042", Bytes: 99,
		Location: "s3://b/shop/b042.dump", Err: errors.New("archive: " + strings.Repeat("a long reason, ", 3000))}
	for i := range 20 {
		r.Copies = append(r.Copies, archive.Copy{Destination: fmt.Sprintf("s3://b%d", i), Location: fmt.Sprintf("s3://b%d/shop/b042.dump", i)})
	}
	dir := t.TempDir()
	line := filepath.Join(dir, "result.json")
	if err := os.WriteFile(line, ResultLine(r, func(s string) string { return s }), 0o644); err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(dir, "upload.json")
	if err := os.WriteFile(upload, UploadLine("s3://b0/shop/b042.dump", "upload-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, logs := onSim(t, fmt.Sprintf("cat %s\necho 'level=info msg=\"child result\" status=archived'\necho '{\"level\":\"info\",\"message\":\"x\"}'\ncat %s\nexit 0\n", upload, line), time.Hour)
	aborter := &recordAborts{}
	c.Abort = []Aborter{aborter}
	got := runOne(t, c)
	if got.Err == nil || !strings.HasPrefix(got.Err.Error(), "archive: a long reason, a long reason") || !strings.HasSuffix(got.Err.Error(), cut) {
		t.Errorf("error %.200q…", got.Err)
	}
	if got.Backup != "b042" || got.Bytes != 99 || got.Location != r.Location || len(got.Copies) != 20 || got.Copies[19].Location != "s3://b19/shop/b042.dump" {
		t.Errorf("%+v\nlog:\n%s", got, logs)
	}
	if len(aborter.aborted) != 0 {
		t.Errorf("aborted %v after the child reported", aborter.aborted)
	}
}

type recordAborts struct{ aborted []string }

func (a *recordAborts) AbortUpload(ctx context.Context, location, uploadID string) (bool, error) {
	a.aborted = append(a.aborted, location+" "+uploadID)
	return true, nil
}

// A child that named an upload and died without a result has the upload aborted.
func TestUploadOfAVanishedChildIsAborted(t *testing.T) {
	dir := t.TempDir()
	upload := filepath.Join(dir, "upload.json")
	if err := os.WriteFile(upload, UploadLine("s3://b/shop/b042.dump", "upload-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, logs := onSim(t, "cat "+upload+"\nexit 1\n", time.Hour)
	aborter := &recordAborts{}
	c.Abort = []Aborter{aborter}
	if r := runOne(t, c); r.Err == nil {
		t.Fatal("no error")
	}
	if len(aborter.aborted) != 2 || aborter.aborted[0] != "s3://b/shop/b042.dump upload-1" {
		t.Errorf("aborted %v, want the upload once per dyno\nlog:\n%s", aborter.aborted, logs)
	}
}

// A result line longer than Heroku carries (one a child did not shorten) arrives split: the
// target fails saying so, and the child, which did finish, is not started again.
func TestResultLineSplitByHeroku(t *testing.T) {
	f := filepath.Join(t.TempDir(), "long.json")
	long := `{"pgoffsite_result":1,"app":"shop","database":"DATABASE_URL","status":"failed","bytes":0,"error":"` + strings.Repeat("x", 12000) + `"}` + "\n"
	if err := os.WriteFile(f, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	c, sim, logs := onSim(t, "cat "+f+"\nexit 0\n", time.Hour)
	r := runOne(t, c)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "cut or damaged on its way through Heroku's logs") {
		t.Fatalf("err = %.300v\nlog:\n%.2000s", r.Err, logs)
	}
	if n := len(sim.Dynos()); n != 1 {
		t.Errorf("%d dynos, want 1", n)
	}
}
