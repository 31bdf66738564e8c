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

const archived = `{"pgoffsite_result":1,"app":"shop","database":"DATABASE_URL","status":"archived","bytes":7,"location":"s3://b/shop.dump"}`

func logSessions(sim *herokusim.Sim) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/log-sessions") {
			n++
		}
	}
	return n
}

// A child that exited 0 but whose result line never reached the coordinator (lost in Heroku's
// logs) archived its target: it is a success, and it is not started again (which would archive
// the target twice).
func TestLostResultOfAChildThatExitedZero(t *testing.T) {
	c, sim, logs := onSim(t, "echo working\nexit 0\n", time.Hour)
	r := runOne(t, c)
	if r.Err != nil {
		t.Fatalf("err = %v\nlog:\n%s", r.Err, logs)
	}
	if n := len(sim.Dynos()); n != 1 {
		t.Errorf("%d dynos, want 1", n)
	}
	if !strings.Contains(logs.String(), "its result line did not reach the coordinator") {
		t.Errorf("the lost line is not said:\n%s", logs)
	}
}

// Logplex ends streams, and a stream can go silent: the coordinator opens the app's log again
// each time, asking for a replay, and reads a result written while no stream was open.
func TestLogStreamsThatEndOrGoSilent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		life    time.Duration
		silence time.Duration
	}{
		{"ended every 300 ms", 300 * time.Millisecond, time.Minute},
		{"silent for 300 ms", 0, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sim, logs := onSim(t, "sleep 2\necho '"+archived+"'\nsleep 1\n", time.Hour)
			sim.SetLogStreamLife(tc.life)
			c.Silence = tc.silence
			c.Poll = time.Minute // the log, not the dyno's state, says it ended
			r := runOne(t, c)
			if r.Err != nil || r.Location != "s3://b/shop.dump" || r.Bytes != 7 {
				t.Fatalf("%+v\nlog:\n%s", r, logs)
			}
			if n := logSessions(sim); n < 3 {
				t.Errorf("%d log sessions, want the stream opened again", n)
			}
			if n := len(sim.Dynos()); n != 1 {
				t.Errorf("%d dynos, want 1", n)
			}
		})
	}
}

type generation string

func (g generation) AppGeneration(ctx context.Context, app string) (string, error) {
	if g == "" {
		return "", errors.New("heroku: read app backups: 503")
	}
	return string(g), nil
}

// A Fir-generation app cannot host a fan-out: the run says so, naming the generation and the
// variable, and starts none. An unknown generation does not stop the run.
func TestFirAppCannotHostAFanout(t *testing.T) {
	c, sim, logs := onSim(t, "echo '"+archived+"'\n", time.Hour)
	sim.SetGeneration("backups", "fir")
	c.Hosts = c.API.(*heroku.Client) // the simulator answers as Heroku does for a Fir app
	r := runOne(t, c)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "app backups is of Heroku's Fir generation") || !strings.Contains(r.Err.Error(), "BACKUP_FANOUT=0") {
		t.Errorf("err = %v", r.Err)
	}
	if n := len(sim.Dynos()); n != 0 {
		t.Errorf("%d dynos started on a Fir app", n)
	}
	c.Hosts = generation("")
	if r := runOne(t, c); r.Err != nil {
		t.Errorf("unknown generation: %v\n%s", r.Err, logs)
	}
	c.Hosts = generation("cedar")
	if r := runOne(t, c); r.Err != nil {
		t.Errorf("cedar: %v\n%s", r.Err, logs)
	}
}

// The pacer lets a burst through, then one call per 60/CallsPerMinute s; a 429 pauses it; a
// low RateLimit-Remaining slows it.
func TestPacer(t *testing.T) {
	p := newPacer(nil, 60)
	for i := range callBurst {
		if d := p.take(1); d != 0 {
			t.Fatalf("call %d of the burst waits %s", i, d)
		}
	}
	if d := p.take(1); d < 900*time.Millisecond || d > time.Second {
		t.Errorf("past the burst: wait %s, want 1 s", d)
	}
	p.hold(10 * time.Second)
	if d := p.take(1); d < 10*time.Second {
		t.Errorf("after a 429 held for 10 s: wait %s", d)
	}
	low := newPacer(remaining(150), 60)
	low.take(callBurst)
	if d := low.take(1); d < 9*time.Second {
		t.Errorf("with 150 tokens left: wait %s, want 10 s (a tenth of the speed)", d)
	}
	if n := Calls(6); n != 6*4+3 {
		t.Errorf("Calls(6) = %d", n)
	}
}

type remaining int

func (r remaining) RateLimitRemaining() (int, bool) { return int(r), true }

// standIn is a child of the coordinator's for tests of many targets: it makes as many Platform
// API calls as a real child (ChildCalls: a real one resolves its database, then lists the
// add-on's attachments), logs a line every 5 s for about a minute, and writes its result as a
// child does, repeatedly until it exits.
const standIn = `app=$1; db=$2
i=0
while [ $i -lt ` + "CHILDCALLS" + ` ]; do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Accept: application/vnd.heroku+json; version=3' \
    -H 'Content-Type: application/json' -d "{\"addon_attachment\":\"$db\",\"app\":\"$app\"}" "$PLATFORM/actions/addon-attachments/resolve"
  i=$((i+1))
done
i=0
while [ $i -lt 12 ]; do echo "level=info msg=\"capturing\" app=$app step=$i"; sleep 5; i=$((i+1)); done
line="{\"pgoffsite_result\":1,\"app\":\"$app\",\"database\":\"$db\",\"status\":\"archived\",\"bytes\":1}"
echo "$line"; sleep 5; echo "$line"; sleep 5; echo "$line"; sleep 5
`

// BACKUP_FANOUT=20 over 40 targets, children of about a minute (stand-ins making a real child's
// Platform API calls), log streams that end every 20 s and replay only the app's last 100
// lines: every target archived by one dyno, never more than 20 at once, and never more than 60
// Platform API calls in any 60 s of the run, the children's included. It takes minutes: the
// budget is what paces it.
func TestFortyTargetsWithinTheBudget(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: simKey})
	platform, _ := herokusim.Serve(t, sim)
	sim.AddApp("backups")
	var targets []archive.Target
	for i := range 40 {
		app := fmt.Sprintf("shop-%02d", i)
		sim.AddDatabase(app, "DATABASE", "heroku-postgresql:standard-0", "postgres://u:p@127.0.0.1:1/"+app)
		targets = append(targets, archive.Target{App: app, Database: "DATABASE_URL"})
	}
	sim.SetDynoCommand("child", "/bin/sh")
	sim.SetConfigVars("backups", map[string]string{"PLATFORM": platform, "KEY": simKey})
	sim.SetLogStreamLife(20 * time.Second)
	sim.SetLogReplayLimit(100)
	f := filepath.Join(t.TempDir(), "child.sh")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(standIn, "CHILDCALLS", fmt.Sprint(ChildCalls))), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Output{}
	client := heroku.New(heroku.Options{APIKey: simKey, PlatformURL: platform})
	c := &Coordinator{API: client, Rate: client, App: "backups", Size: "standard-1X", TTL: time.Hour, N: 20, Log: zerolog.New(logs),
		Command: func(t archive.Target) string { return "child " + f + " " + t.App + " " + t.Database }}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	rs := c.Run(ctx, targets)
	wall := time.Since(start)
	for _, r := range rs {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Target, r.Err)
		}
	}
	peak := sim.PlatformCallPeak(time.Minute)
	t.Logf("40 targets, BACKUP_FANOUT=20: %s; %d Platform API calls, at most %d in any 60 s; %d log sessions; at most %d dynos at once",
		wall.Round(time.Second), platformCalls(sim), peak, logSessions(sim), sim.MaxConcurrentDynos())
	if peak > 60 {
		t.Errorf("%d Platform API calls in one 60 s window, want at most 60", peak)
	}
	if n := len(sim.Dynos()); n != 40 {
		t.Errorf("%d dynos for 40 targets", n)
	}
	if p := sim.MaxConcurrentDynos(); p > 20 {
		t.Errorf("%d dynos at once", p)
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}

func platformCalls(sim *herokusim.Sim) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.API == "platform" {
			n++
		}
	}
	return n
}
