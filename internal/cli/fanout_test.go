package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/coordinator"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// fanoutApp makes "backups", the app pgoffsite runs in: its config vars are env (what its
// one-off dynos get), and its dynos run the pgoffsite binary this test built.
func (w *world) fanoutApp(env map[string]string) map[string]string {
	env["HEROKU_APP_NAME"] = "backups" // dyno metadata
	w.sim.AddApp("backups")
	w.sim.SetConfigVars("backups", env)
	w.sim.SetDynoCommand("pgoffsite", pgoffsiteBinary(w.t))
	return env
}

// quickCoordinator shortens the coordinator's waits for the world's in-process runs.
func (w *world) quickCoordinator() {
	w.tune(func(f *Factory) {
		f.Coordinator = func(c *coordinator.Coordinator) {
			c.Poll, c.Drain, c.RetryBase, c.RetryCap = 100*time.Millisecond, 2*time.Second, 100*time.Millisecond, 500*time.Millisecond
		}
	})
}

func (w *world) shops(n int, big bool) []string {
	var apps []string
	for i := range n {
		app := fmt.Sprintf("shop-%c", 'a'+i)
		w.sim.AddApp(app)
		if big {
			w.bigDatabase(app)
		} else {
			w.database(app, "DATABASE", 200)
		}
		apps = append(apps, app)
	}
	return apps
}

func dumps(keys []string) int {
	n := 0
	for _, k := range keys {
		if strings.HasSuffix(k, ".dump") {
			n++
		}
	}
	return n
}

// BACKUP_FANOUT=3 over six targets: each archived in a detached one-off dyno running
// `pgoffsite backup --target APP:DATABASE`, three at once and never more, one summary, one
// heartbeat pair and one webhook for the run.
func TestFanoutSixTargets(t *testing.T) {
	w := newWorld(t)
	w.quickCoordinator()
	apps := w.shops(6, false)
	m, env := w.withMonitor(w.env(strings.Join(apps, " ")), "always")
	env["BACKUP_FANOUT"] = "3"
	env = w.fanoutApp(env)

	one := copyEnv(env)
	one["BACKUP_TARGETS"] = apps[0]
	start := time.Now()
	if code, out := w.run(one, "backup"); code != ExitOK {
		t.Fatalf("one target: exit %d\n%s", code, out)
	}
	single := time.Since(start)
	m, env = w.withMonitor(env, "always")

	start = time.Now()
	code, out := w.run(env, "backup")
	wall := time.Since(start)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	t.Logf("one target %s, six with BACKUP_FANOUT=3 %s (%.1f×)", single.Round(time.Millisecond), wall.Round(time.Millisecond), float64(wall)/float64(single))
	if peak := w.sim.MaxConcurrentDynos(); peak != 3 {
		t.Errorf("%d dynos ran at once, want 3", peak)
	}
	if n := strings.Count(out, "summary: archived"); n != 6 {
		t.Errorf("%d targets summarized as archived, want 6", n)
	}
	if n := strings.Count(out, "backup run finished"); n != 1 {
		t.Errorf("%d run summaries", n)
	}
	if got := m.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key,POST /hook" {
		t.Errorf("monitor saw %s, want one heartbeat pair and one webhook", got)
	}
	if n := dumps(w.keys()); n != 7 {
		t.Errorf("%d dumps in the bucket, want 7 (one run of one target, one of six)", n)
	}
	dynos := w.sim.Dynos()
	if len(dynos) != 7 {
		t.Fatalf("%d dynos started, want 7", len(dynos))
	}
	commands := map[string]bool{}
	for i, d := range dynos[1:] {
		commands[d.Command] = true
		if d.Env["PGOFFSITE_CHILD"] != "1" || d.Size != "standard-1X" || d.TTL != 12*3600 || d.ExitCode != 0 {
			t.Errorf("dyno %d: %+v", i, d)
		}
	}
	for _, app := range apps {
		if want := "pgoffsite backup --target " + app + ":DATABASE_URL"; !commands[want] {
			t.Errorf("no dyno ran %q", want)
		}
	}
	// Three at once is the peak above; how much faster that is depends on how busy the machine
	// is while each of the two runs, so the times are logged, not compared.
}

func copyEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// A limit of three concurrent one-off dynos with BACKUP_FANOUT=5: Heroku refuses the fourth
// (422 cannot_run_above_limit), and a 409 (release not visible), a 429 and a start whose answer
// is lost (503 after the dyno started) come on top; the
// coordinator waits and archives every target. The children run with LOG_LEVEL=error.
func TestFanoutWaitsOutTheDynoLimit(t *testing.T) {
	w := newWorld(t)
	w.quickCoordinator()
	apps := w.shops(5, false)
	env := w.env(strings.Join(apps, " "))
	env["BACKUP_FANOUT"] = "5"
	env = w.fanoutApp(env)
	// The children log only errors: their result lines must still reach the coordinator.
	quiet := copyEnv(env)
	quiet["LOG_LEVEL"] = "error"
	w.sim.SetConfigVars("backups", quiet)
	w.sim.SetDynoLimit(3)
	w.sim.Faults().FailNextPath("platform", "/apps/backups/dynos", 409, 1, 0)
	w.sim.Faults().FailNextPath("platform", "/apps/backups/dynos", 429, 1, 0)
	w.sim.LoseDynoAnswers(1)
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(out, "summary: archived"); n != 5 {
		t.Errorf("%d archived, want 5", n)
	}
	if peak := w.sim.MaxConcurrentDynos(); peak > 3 {
		t.Errorf("%d dynos at once past a limit of 3", peak)
	}
	// The dyno whose start answer was lost was found and followed, not started twice.
	if n := len(w.sim.Dynos()); n != 5 {
		t.Errorf("%d dynos for 5 targets", n)
	}
	posts := 0
	for _, r := range w.sim.Requests() {
		if r.Method == "POST" && r.Path == "/apps/backups/dynos" {
			posts++
		}
	}
	if posts <= 5+2 {
		t.Errorf("%d dyno starts asked: the limit was never hit", posts)
	}
	if !strings.Contains(out, "Heroku refused the dyno for now") {
		t.Error("the wait is not logged")
	}
}

// runAsync runs `pgoffsite args...` in-process with env while the test acts.
func (w *world) runAsync(env map[string]string, args ...string) (done <-chan int, out *testenv.Output) {
	for _, k := range configVars {
		w.t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		w.t.Setenv(k, v)
	}
	out = &testenv.Output{}
	ch := make(chan int, 1)
	go func() { ch <- w.execute(context.Background(), args, out, out) }()
	return ch, out
}

// waitDynos waits until n dynos were started and the newest one's upload holds a part.
func (w *world) waitDynoUploading(n int) string {
	w.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if ds := w.sim.Dynos(); len(ds) >= n && !ds[n-1].Ended && w.waitUploadUnderWay(200*time.Millisecond) {
			return ds[n-1].Name
		}
	}
	w.t.Fatalf("dyno %d never uploaded", n)
	return ""
}

// A child SIGKILLed mid-upload is started again once and archives the target; the upload it
// left open is aborted by the coordinator (it logged the upload's id). A target whose dyno dies
// twice fails the run (exit 1), named, with nothing left open.
func TestFanoutChildKilled(t *testing.T) {
	w := newWorld(t)
	w.quickCoordinator()
	w.shops(1, true)
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(t, "bandwidth", "upstream", map[string]any{"rate": 4000})
	env := smallParts(w.env("shop-a"))
	env["BACKUP_FANOUT"] = "2"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	env = w.fanoutApp(env)
	// The children log only errors: the upload they open must still be named.
	quiet := copyEnv(env)
	quiet["LOG_LEVEL"] = "error"
	w.sim.SetConfigVars("backups", quiet)

	done, out := w.runAsync(env, "backup")
	w.sim.KillDyno(w.waitDynoUploading(1))
	var code int
	select {
	case code = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("no end:\n%s", out)
	}
	if code != ExitOK || strings.Count(out.String(), "summary: archived") != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := len(w.sim.Dynos()); n != 2 {
		t.Errorf("%d dynos, want 2 (the killed one started again once)", n)
	}
	if !strings.Contains(out.String(), "aborted the upload the dyno left open") {
		t.Errorf("the killed dyno's upload was not aborted:\n%s", out)
	}
	if open := w.openUploads(); len(open) != 0 {
		t.Errorf("uploads left open: %v", open)
	}

	// Twice: the run fails, naming the target.
	env["ARCHIVE_URL"] += "/twice"
	quiet["ARCHIVE_URL"] = env["ARCHIVE_URL"]
	w.sim.SetConfigVars("backups", quiet)
	done, out = w.runAsync(env, "backup")
	w.sim.KillDyno(w.waitDynoUploading(3))
	w.sim.KillDyno(w.waitDynoUploading(4))
	select {
	case code = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("no end:\n%s", out)
	}
	if code != ExitFailed || !strings.Contains(out.String(), "summary: FAILED") || !strings.Contains(out.String(), "shop-a:DATABASE_URL in a one-off dyno") {
		t.Errorf("exit %d, want 1 naming shop-a:\n%s", code, out)
	}
	if open := w.openUploads(); len(open) != 0 {
		t.Errorf("uploads left open: %v", open)
	}
	if n := len(w.sim.Dynos()); n != 4 {
		t.Errorf("%d dynos, want 4", n)
	}
}

// SIGTERM to the coordinator (the real binary) while three children upload: every child is
// stopped, each aborts its upload, nothing is published, and the coordinator exits 143.
func TestFanoutSIGTERM(t *testing.T) {
	w := newWorld(t)
	w.shops(3, true)
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	// 300 KB/s a connection: each 24 MB upload takes over a minute, so the three overlap
	// however far apart a loaded machine starts the children.
	proxy.AddToxic(t, "bandwidth", "upstream", map[string]any{"rate": 300})
	env := smallParts(w.env("shop-a shop-b shop-c"))
	env["BACKUP_FANOUT"] = "3"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	env = w.fanoutApp(env)
	w.sim.SetStopGrace(25 * time.Second)

	cmd := exec.Command(pgoffsiteBinary(t), "backup")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &testenv.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Three children each start a process, read the backup and open an upload: minutes on a
	// loaded machine.
	for deadline := time.Now().Add(3 * time.Minute); ; {
		ds := w.sim.Dynos()
		if len(ds) == 3 && len(w.openUploads()) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("three uploads never ran: %+v\n%s", ds, out)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the coordinator did not exit within 30 s of SIGTERM:\n%s", out)
	}
	t.Logf("exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if code := cmd.ProcessState.ExitCode(); code != ExitTerminated {
		t.Errorf("exit %d, want 143\n%s", code, out)
	}
	for _, d := range w.sim.Dynos() {
		if !d.Stopped || !d.Ended || d.ExitCode != ExitTerminated {
			t.Errorf("dyno %s: stopped %v ended %v exit %d, want stopped, ended by its own exit 143", d.Name, d.Stopped, d.Ended, d.ExitCode)
		}
	}
	if n := dumps(w.keys()); n != 0 {
		t.Errorf("%d dumps published", n)
	}
	if open := w.openUploads(); len(open) != 0 {
		t.Errorf("uploads left open: %v\n%s", open, out)
		for _, d := range w.sim.Dynos() {
			t.Logf("dyno %s:\n%s", d.Name, w.sim.DynoLog(d.Name))
		}
	}
}

// Without dyno metadata the coordinator cannot name its own app: exit 2 with the command that
// enables it, before any request.
func TestFanoutNeedsDynoMetadata(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	env := w.env("shop")
	env["BACKUP_FANOUT"] = "2"
	before := len(w.sim.Requests())
	code, out := w.run(env, "backup")
	if code != ExitUsage || !strings.Contains(out, "heroku labs:enable runtime-dyno-metadata -a APP") || !strings.Contains(out, "HEROKU_APP_NAME") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if len(w.sim.Requests()) != before {
		t.Error("requests were made")
	}
	if code, out := w.run(env, "backup", "--target"); code != ExitUsage || !strings.Contains(out, "--target APP:DATABASE") {
		t.Errorf("--target without a value: exit %d\n%s", code, out)
	}
}

// check says what a fan-out run of this size spends of the account's API budget.
func TestFanoutBudgetLine(t *testing.T) {
	got := fanoutBudget(5, 6)
	for _, want := range []string{"BACKUP_FANOUT=5 over 6 target(s) makes about 27 Platform API calls", "at most 45 a minute", "at least 1 minute(s)"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := fanoutBudget(20, 40); !strings.Contains(got, "about 172 Platform API calls") || !strings.Contains(got, "at least 4 minute(s)") {
		t.Errorf("%q", got)
	}
}

// BACKUP_FANOUT=5 over six targets whose children run over a minute (their captures are slow),
// while logplex ends every stream after 20 s and replays only the app's last 100 lines: every
// target archived by one dyno, exit 0, and never more than 60 Platform API calls in any 60 s of
// the run, the children's included. It takes minutes: the children's minute is the claim.
func TestFanoutWithinLogplexAndTheRateBudget(t *testing.T) {
	w := newWorld(t)
	apps := w.shops(6, false)
	env := w.env(strings.Join(apps, " "))
	env["BACKUP_FANOUT"] = "5"
	env = w.fanoutApp(env)
	w.sim.Faults().SlowCaptures(time.Minute)
	w.sim.SetLogStreamLife(20 * time.Second)
	w.sim.SetLogReplayLimit(100)
	start := time.Now()
	code, out := w.run(env, "backup")
	wall := time.Since(start)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(out, "summary: archived"); n != 6 {
		t.Errorf("%d targets summarized as archived, want 6", n)
	}
	if n := dumps(w.keys()); n != 6 {
		t.Errorf("%d dumps in the bucket, want 6", n)
	}
	if n := len(w.sim.Dynos()); n != 6 {
		t.Errorf("%d dynos for 6 targets", n)
	}
	calls := map[string]int{}
	total := 0
	for _, r := range w.sim.Requests() {
		if r.API == "platform" {
			calls[r.Method+" "+r.Path]++
			total++
		}
	}
	peak := w.sim.PlatformCallPeak(time.Minute)
	t.Logf("6 targets, BACKUP_FANOUT=5, children of a minute or more: %s; %d Platform API calls, at most %d in any 60 s: %v",
		wall.Round(time.Second), total, peak, calls)
	if peak > 60 {
		t.Errorf("%d Platform API calls in one 60 s window, want at most 60", peak)
	}
	if wall < 2*time.Minute {
		t.Errorf("the run took %s: the children did not run a minute each", wall)
	}
}
