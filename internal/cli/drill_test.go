package cli

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The pgoffsite app itself, where drills provision their throwaway databases.
const drillTestApp = "pgoffsite-ops"

// newDrillWorld is newWorld with a simulator that provisions Heroku Postgres add-ons as fresh
// databases on the test's Postgres, and shop's database archived by a real backup run.
func newDrillWorld(t *testing.T, env map[string]string) (*world, map[string]string) {
	t.Helper()
	w := &world{t: t, pg: testenv.StartPostgres(t), minio: testenv.StartMinIO(t)}
	w.sim = herokusim.New(herokusim.Options{Token: apiKey, PgDump: w.pg.Bin("pg_dump"),
		PostgresAdmin: w.pg.DSN("postgres"), ProvisionDelay: 700 * time.Millisecond})
	w.platform, w.data = herokusim.Serve(t, w.sim)
	w.bucket = w.minio.CreateBucket(t, "drill")
	w.uploadsBefore = map[string]bool{}
	w.sim.AddApp("shop")
	w.sim.AddApp(drillTestApp)
	w.database("shop", "DATABASE", 1500)
	benv := w.env("shop")
	for k, v := range env {
		benv[k] = v
	}
	if code, _ := w.run(benv, "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	w.polls()
	denv := w.env("shop")
	denv["HEROKU_APP_NAME"] = drillTestApp
	denv["DRILL_CHECKS"] = "select count(*) = 1500 from orders; select count(*) > 0 from customers where name like 'customer %'"
	return w, denv
}

// polls makes the world's drills poll the add-on's state every few hundred milliseconds.
func (w *world) polls() {
	w.tune(func(f *Factory) {
		f.DrillTiming.PollBase, f.DrillTiming.PollMax = 100*time.Millisecond, 400*time.Millisecond
	})
}

// drillAddons are the add-ons on the pgoffsite app.
func (w *world) drillAddons() []herokusim.AddonState { return w.sim.Addons(drillTestApp) }

// addonDatabases counts the databases the simulator made for add-ons (named addon_…).
func (w *world) addonDatabases() string {
	w.t.Helper()
	n, err := w.pg.Query("postgres", `SELECT count(*) FROM pg_database WHERE datname LIKE 'addon\_%'`)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// requested counts the Platform API requests of method to paths containing path.
func (w *world) requested(method, path string) int {
	n := 0
	for _, r := range w.sim.Requests() {
		if r.API == "platform" && r.Method == method && strings.Contains(r.Path, path) {
			n++
		}
	}
	return n
}

// verification is the newest .verified.json record in the bucket.
func (w *world) verification() catalog.Verification {
	w.t.Helper()
	var v catalog.Verification
	for _, k := range w.keys() {
		if strings.HasSuffix(k, catalog.VerifiedSuffix) {
			if err := json.Unmarshal(w.object(k), &v); err != nil {
				w.t.Fatal(err)
			}
			return v
		}
	}
	w.t.Fatal("no verification record")
	return v
}

// A drill of a good archive: an add-on provisioned on the pgoffsite app, the archive restored into
// it, counts equal, checks true, the add-on deleted (and its database dropped), exit 0; the
// result recorded where status reads it, and the cost logged.
func TestDrillGoodArchive(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	before := w.addonDatabases()
	code, out := w.run(env, "drill")
	if code != ExitOK {
		t.Fatalf("drill of a good archive: exit %d", code)
	}
	for _, want := range []string{"provisioning a throwaway database for the drill", "drill database provisioned", "drill check", "passed=true",
		"summary: drill passed", "rows=1600", "checks=2 checks_passed=2", "drill database deleted", "drill finished", "cost_usd=", "at list price"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if w.requested("POST", "/apps/"+drillTestApp+"/addons") != 1 || w.requested("DELETE", "/apps/"+drillTestApp+"/addons/pgoffsite-drill-") != 1 {
		t.Errorf("want one POST and one DELETE of a pgoffsite-drill- add-on on %s", drillTestApp)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
	if n := w.requested("POST", "/apps/shop") + w.requested("DELETE", "/apps/shop") + w.requested("PATCH", "/apps/shop"); n != 0 {
		t.Errorf("the drill changed the target's app (%d requests)", n)
	}
	if after := w.addonDatabases(); after != before {
		t.Errorf("add-on databases %s before, %s after: the drill's was not dropped", before, after)
	}
	v := w.verification()
	if !v.Passed || !v.Restored || v.Rows != 1600 || v.Drill == nil || !v.Drill.Deleted || len(v.Drill.Checks) != 2 ||
		!strings.HasPrefix(v.Drill.Addon, "pgoffsite-drill-") || v.Drill.Plan != "heroku-postgresql:essential-0" || v.Drill.HeldSeconds <= 0 {
		t.Errorf("verification record %+v drill %+v", v, v.Drill)
	}
	// pgoffsite status reads the record.
	senv := w.env("shop")
	delete(senv, "HEROKU_API_KEY")
	if code, out := w.run(senv, "status", "--json"); code != ExitOK || !strings.Contains(out, `"drill"`) || !strings.Contains(out, v.Drill.Addon) {
		t.Errorf("status --json: exit %d, want the drill's record in it", code)
	}
	if code, out := w.run(senv, "status"); code != ExitOK || !strings.Contains(out, "passed, restored and counted in a drill on heroku-postgresql:essential-0, 2 of 2 checks true") {
		t.Errorf("status: exit %d, want the drill shown", code)
	}
}

// A damaged archive, and a false DRILL_CHECKS statement: exit 1 naming the target and the
// reason; the add-on deleted all the same.
func TestDrillFailures(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	m, dump := w.manifest("shop", "DATABASE")
	key := "pgbackups/" + m.Key
	damaged := append([]byte(nil), dump...)
	damaged[len(damaged)/2] ^= 0xff
	w.put(key, damaged)
	code, out := w.run(env, "drill")
	if code != ExitFailed || !strings.Contains(out, "summary: FAILED") || !strings.Contains(out, "app=shop") || !strings.Contains(out, "database=DATABASE") ||
		!strings.Contains(out, "SHA-256") {
		t.Errorf("drill of a damaged archive: exit %d; want 1 naming shop:DATABASE and the damage", code)
	}
	if left := w.drillAddons(); len(left) != 0 || !strings.Contains(out, "drill database deleted") {
		t.Errorf("add-ons left after a failed drill: %+v", left)
	}
	if v := w.verification(); v.Passed || v.Drill == nil || !v.Drill.Deleted {
		t.Errorf("record of the failed drill: %+v", v)
	}

	w.put(key, dump)
	env["DRILL_CHECKS"] = "select count(*) > 0 from orders; select count(*) > 1000000 from orders"
	monitor, menv := w.withMonitor(withEnv(env), "failure")
	menv["DRILL_HEARTBEAT_URL"], menv["HEARTBEAT_URL"] = menv["HEARTBEAT_URL"], "" // drill pings its own, never the backup's
	code, out = w.run(menv, "drill")
	// Reported like every command: the heartbeat's /fail and the webhook, naming the reason.
	if got := monitor.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key/fail,POST /hook" {
		t.Errorf("monitor saw %s", got)
	}
	if hook := monitor.Bodies()["/hook"]; !strings.Contains(hook, `"drill"`) || !strings.Contains(hook, "is false") || databaseURL.MatchString(hook) {
		t.Errorf("webhook body lacks the drill's failure (or holds a database URL): %s", hook)
	}
	if code != ExitFailed || !strings.Contains(out, "app=shop") || !strings.Contains(out, "DRILL_CHECKS statement 2 (select count(*) > 1000000 from orders) is false") {
		t.Errorf("drill with a false check: exit %d; want 1 naming the target and the statement", code)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left after a false check: %+v", left)
	}
	v := w.verification()
	if v.Passed || v.Drill == nil || len(v.Drill.Checks) != 2 || !v.Drill.Checks[0].Passed || v.Drill.Checks[1].Passed {
		t.Errorf("record of the false check: %+v", v.Drill)
	}

	// Checks run read-only.
	env["DRILL_CHECKS"] = "create table sneaky as select true"
	if code, out := w.run(env, "drill"); code != ExitFailed || !strings.Contains(out, "read-only transaction") {
		t.Errorf("a check that writes: exit %d, want it refused as read-only", code)
	}

	// A statement that answers no boolean is a failure too, with what it answered.
	env["DRILL_CHECKS"] = "select 42"
	if code, out := w.run(env, "drill"); code != ExitFailed || !strings.Contains(out, `answered \"42\", not one boolean`) {
		t.Errorf("a check answering 42: exit %d", code)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
}

// SIGTERM mid-restore: the add-on deleted, exit 143, in time.
func TestDrillSIGTERMMidRestore(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	w.pg.Exec(t, "postgres", "SELECT 1") // the server answers
	// The archive is read through a slow link, so the restore is under way for many seconds.
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 4}) // KB/s: some 10 s for the dump
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	cmd, out := startBinary(t, env, "drill")
	if !out.WaitFor("restoring the archive into it", 60*time.Second) {
		t.Error("the restore did not start within 60 s")
	}
	// pg_restore is connected to the drill's database.
	restoring := func() bool {
		n, _ := w.pg.Query("postgres", `SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'addon\_%'`)
		return n != "" && n != "0"
	}
	seen := false
	for deadline := time.Now().Add(30 * time.Second); !seen && time.Now().Before(deadline); {
		if seen = restoring(); !seen {
			time.Sleep(50 * time.Millisecond) // polling an outside process; no event to wait on
		}
	}
	if !seen {
		t.Error("no session on the drill database within 30 s")
	}
	if len(w.drillAddons()) != 1 {
		t.Fatalf("want the drill's add-on during the restore, have %+v", w.drillAddons())
	}
	w.terminate(cmd, out)
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left after SIGTERM: %+v", left)
	}
	if !strings.Contains(out.String(), "drill database deleted") || !strings.Contains(out.String(), "drill interrupted") {
		t.Error("the deletion and the interruption were not reported")
	}
}

// A drill add-on left by an earlier drill (here kept with --keep, then older than DRILL_TIMEOUT)
// is removed before the next drill starts, and named in its log; a young one is left alone.
func TestDrillRemovesLeftovers(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	code, out := w.run(env, "drill", "--keep")
	if code != ExitOK || !strings.Contains(out, "--keep: the drill database is left for inspection") || !strings.Contains(out, "heroku addons:destroy pgoffsite-drill-") {
		t.Fatalf("drill --keep: exit %d; want the add-on kept and the command to remove it", code)
	}
	kept := w.drillAddons()
	if len(kept) != 1 || kept[0].State != "provisioned" {
		t.Fatalf("kept add-ons: %+v", kept)
	}
	// Young: another drill may be using it.
	code, out = w.run(env, "drill")
	if code != ExitOK || !strings.Contains(out, "left alone") {
		t.Errorf("a young drill add-on: exit %d, want it left alone", code)
	}
	if left := w.drillAddons(); len(left) != 1 || left[0].Name != kept[0].Name {
		t.Fatalf("add-ons: %+v, want only the kept one", left)
	}
	// Older than DRILL_TIMEOUT: a killed drill's.
	w.sim.SetAddonCreated(kept[0].Name, time.Now().Add(-3*time.Hour))
	code, out = w.run(env, "drill")
	removed := strings.Index(out, "removed a drill database that an earlier, interrupted drill left behind")
	if code != ExitOK || removed < 0 || !strings.Contains(out, "addon="+kept[0].Name) {
		t.Fatalf("drill after a left-over: exit %d; want it removed and named", code)
	}
	if started := strings.Index(out, "provisioning a throwaway database"); started < removed {
		t.Error("the left-over was not removed before the drill started")
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
}

// An encrypted archive drills with the identity; without it, a clear error before anything is
// provisioned.
func TestDrillEncrypted(t *testing.T) {
	k := newAgeKey(t)
	w, env := newDrillWorld(t, map[string]string{"ARCHIVE_RECIPIENTS": k.recipient})
	if m, _ := w.manifest("shop", "DATABASE"); m.Encryption == nil {
		t.Fatal("the archive is not encrypted")
	}
	code, out := w.run(env, "drill")
	k.assertNoKey(t, out)
	if code != ExitFailed || !strings.Contains(out, "no identity was given") || !strings.Contains(out, "AGE_IDENTITY") || !strings.Contains(out, "nothing was provisioned") {
		t.Errorf("drill of an encrypted archive without an identity: exit %d", code)
	}
	if n := w.requested("POST", "/addons"); n != 0 {
		t.Errorf("%d add-ons provisioned without an identity", n)
	}
	code, out = w.run(withEnv(env, "AGE_IDENTITY", k.text), "drill")
	k.assertNoKey(t, out)
	if code != ExitOK || !strings.Contains(out, "summary: drill passed") {
		t.Errorf("drill with AGE_IDENTITY: exit %d", code)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
}

// Bad input, before any request: no HEROKU_APP_NAME, an archive too big for the plan, a plan
// pgoffsite does not know; and a provisioning that never ends is bounded and cleaned up.
func TestDrillRefusals(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	delete(env, "HEROKU_APP_NAME")
	os.Unsetenv("HEROKU_APP_NAME")
	code, out := w.run(env, "drill")
	if code != ExitUsage || !strings.Contains(out, "HEROKU_APP_NAME") || !strings.Contains(out, "heroku labs:enable runtime-dyno-metadata -a APP") {
		t.Errorf("no HEROKU_APP_NAME: exit %d", code)
	}
	env["HEROKU_APP_NAME"] = drillTestApp
	if code, out := w.run(withEnv(env, "DRILL_PLAN", "mini"), "drill"); code != ExitUsage || !strings.Contains(out, "DRILL_PLAN") {
		t.Errorf("unknown plan: exit %d", code)
	}

	// The manifest says the data is bigger than essential-0's 1 GB.
	m, _ := w.manifest("shop", "DATABASE")
	mk := strings.TrimSuffix("pgbackups/"+m.Key, ".dump") + ".json"
	good := w.object(mk)
	big := m
	st := *m.Structure
	st.DataBytes = 20 << 30
	big.Structure = &st
	blob, _ := json.Marshal(big)
	w.put(mk, blob)
	code, out = w.run(env, "drill")
	if code != ExitFailed || !strings.Contains(out, "more than the 1.00 GiB storage of DRILL_PLAN heroku-postgresql:essential-0") ||
		!strings.Contains(out, "heroku-postgresql:essential-2") || !strings.Contains(out, "nothing was provisioned") {
		t.Errorf("archive bigger than the plan: exit %d", code)
	}
	if n := w.requested("POST", "/addons"); n != 0 {
		t.Errorf("%d add-ons provisioned for an archive too big for the plan", n)
	}
	w.put(mk, good)

	// Heroku never finishes provisioning: the wait is bounded and the add-on deleted.
	w.tune(func(f *Factory) { f.DrillTiming.Provision = 2 * time.Second })
	w.sim.Faults().StallProvisioning(1)
	code, out = w.run(env, "drill")
	if code != ExitFailed || !strings.Contains(out, `is still \"provisioning\" after 2s`) {
		t.Errorf("provisioning that never ends: exit %d", code)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
}

// A DELETE that Heroku refuses: the drill fails, and the log says how to remove the add-on.
func TestDrillDeleteFails(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	w.sim.Faults().FailAddonDeletes(403, 1)
	code, out := w.run(env, "drill")
	left := w.drillAddons()
	if len(left) != 1 {
		t.Fatalf("add-ons: %+v, want the one whose deletion failed", left)
	}
	if code != ExitFailed || !strings.Contains(out, "cannot delete the drill database") ||
		!strings.Contains(out, "heroku addons:destroy "+left[0].Name+" -a "+drillTestApp+" --confirm "+drillTestApp) {
		t.Errorf("a failed deletion: exit %d; want 1 and the command that removes it", code)
	}
}

// A drill that outlasts DRILL_TIMEOUT fails saying so, and its add-on is deleted.
func TestDrillTimeout(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(t, "bandwidth", "downstream", map[string]any{"rate": 2}) // KB/s: some 20 s for the dump
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	env["DRILL_TIMEOUT"] = "4s"
	code, out := w.run(env, "drill")
	if code != ExitFailed || !strings.Contains(out, "the drill took longer than DRILL_TIMEOUT 4s") || !strings.Contains(out, "drill database deleted") {
		t.Errorf("a drill past DRILL_TIMEOUT: exit %d", code)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left: %+v", left)
	}
}

// Interrupted while Heroku provisions the add-on: it is deleted all the same.
func TestDrillInterruptedWhileProvisioning(t *testing.T) {
	w, env := newDrillWorld(t, nil)
	w.sim.Faults().StallProvisioning(1)
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testenv.Output{}
	done := make(chan int, 1)
	go func() { done <- w.execute(ctx, []string{"drill"}, out, out) }()
	if !out.WaitFor("provisioning a throwaway database", 30*time.Second) {
		t.Fatal("the drill did not start provisioning")
	}
	for deadline := time.Now().Add(10 * time.Second); len(w.drillAddons()) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling the simulator; no event to wait on
	}
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the drill did not stop within 20 s of the interruption")
	}
	t.Logf("output:\n%s", out.String())
	w.assertNoSecrets(out.String())
	if code != ExitFailed || !strings.Contains(out.String(), "drill interrupted") {
		t.Errorf("exit %d, want %d and the interruption reported", code, ExitFailed)
	}
	if left := w.drillAddons(); len(left) != 0 {
		t.Errorf("add-ons left after the interruption: %+v", left)
	}
}
