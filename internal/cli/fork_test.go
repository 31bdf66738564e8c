package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The pgoffsite app of the fork tests, where forks are provisioned.
const forkTestApp = "pgoffsite-forks"

// newForkWorld is newWorld with a simulator that provisions add-ons, forks among them, as real
// databases on the test's Postgres; shop's database (standard-0) holds rows orders, and env backs
// it up with BACKUP_METHOD=fork.
func newForkWorld(t *testing.T, rows int) (w *world, name string, env map[string]string) {
	t.Helper()
	w = &world{t: t, pg: testenv.StartPostgres(t), minio: testenv.StartMinIO(t)}
	w.sim = herokusim.New(herokusim.Options{Token: apiKey, PgDump: w.pg.Bin("pg_dump"),
		PostgresAdmin: w.pg.DSN("postgres"), ProvisionDelay: 700 * time.Millisecond})
	w.platform, w.data = herokusim.Serve(t, w.sim)
	w.bucket = w.minio.CreateBucket(t, "fork")
	w.uploadsBefore = map[string]bool{}
	w.sim.AddApp("shop")
	w.sim.AddApp(forkTestApp)
	_, name = w.database("shop", "DATABASE", rows)
	w.tune(func(f *Factory) {
		f.ForkTiming.PollBase, f.ForkTiming.PollMax = 100*time.Millisecond, 400*time.Millisecond
	})
	env = w.env("shop")
	env["BACKUP_METHOD"] = "fork"
	env["HEROKU_APP_NAME"] = forkTestApp
	env["PG_DUMP_PATH"] = w.pg.Bin("pg_dump")
	return w, name, env
}

func (w *world) forks() []herokusim.AddonState { return w.sim.Addons(forkTestApp) }

// slowDump makes shop's database big (24 MB of random bytes) and its archive's destination slow,
// so that the fork's pg_dump is mid-dump for many seconds: it writes only as fast as the upload
// reads.
func (w *world) slowDump(name string, env map[string]string) map[string]string {
	w.t.Helper()
	w.pg.Exec(w.t, name, `CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE blobs AS SELECT g AS id, gen_random_bytes(1024) AS b FROM generate_series(1, 24000) g;`)
	proxy := testenv.StartToxiproxy(w.t).Proxy(w.t, strings.TrimPrefix(w.minio.Endpoint, "http://"))
	proxy.AddToxic(w.t, "bandwidth", "upstream", map[string]any{"rate": 1000}) // KB/s: some 25 s for the dump
	slow := w.forkEnv(env, env["BACKUP_TARGETS"])
	slow["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	return smallParts(slow)
}

// A fork capture: the fork provisioned on the pgoffsite app (config.fork naming the target),
// dumped, the archive restoring the source's rows, its manifest saying what was forked, and the
// fork deleted with its cost logged; the production database was never dumped.
func TestBackupForkCapture(t *testing.T) {
	w, name, env := newForkWorld(t, 3000)
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.restores(dump, name)
	o := m.Origin
	if o == nil || o.Source != "fork" || o.Fork == nil || !strings.HasPrefix(o.Fork.Addon, "pgoffsite-fork-") || o.Fork.App != forkTestApp ||
		o.Fork.Plan != "heroku-postgresql:standard-0" || o.Fork.Of != "shop::DATABASE_URL" || o.Heroku == nil || o.Heroku.App != "shop" || o.Heroku.Addon == "" || o.PgDump == nil {
		t.Errorf("manifest origin %+v", o)
	}
	if left := w.forks(); len(left) != 0 || w.sim.CreatedAddons() != 1 {
		t.Errorf("add-ons left %+v, %d created; want none left of one", left, w.sim.CreatedAddons())
	}
	if n := w.addonDatabases(); strings.TrimSpace(n) != "0" {
		t.Errorf("%s fork databases left on the server", n)
	}
	for _, want := range []string{"provisioning a fork of the database", "fork_of=shop::DATABASE_URL", "fork provisioned: dumping it", "pg_dump started",
		"fork deleted", "cost_usd=", "at list price", "summary: archived"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if start := lineWith(out, "backup run started"); !strings.Contains(start, "method=fork") {
		t.Errorf("start line %q, want method=fork", start)
	}
	for _, r := range w.sim.Requests() {
		if r.API == "data" || r.API == "storage" {
			t.Errorf("Heroku's backups were asked: %s %s %s", r.API, r.Method, r.Path)
		}
	}
	code, out = w.run(env, "check")
	if code != ExitOK || !strings.Contains(out, "each backup forks add-on") || !strings.Contains(out, "heroku-postgresql:standard-0 add-on on "+forkTestApp) ||
		!strings.Contains(out, "an hour at list price") || !strings.Contains(out, "forks: none on "+forkTestApp) {
		t.Errorf("check: exit %d", code)
	}
}

// The fork's database dropped mid-dump: exit 1, the failure naming the fork, nothing published,
// the fork deleted.
func TestBackupForkDumpFails(t *testing.T) {
	w, name, env := newForkWorld(t, 1000)
	done, out := w.runAsync(w.slowDump(name, env), "backup")
	if !out.WaitFor("pg_dump started", 90*time.Second) || !w.waitUploadUnderWay(60*time.Second) {
		t.Fatal("the dump's upload did not start within 150 s")
	}
	forks := w.forks()
	if len(forks) != 1 || forks[0].Database == "" {
		t.Fatalf("want one fork during the dump, have %+v", forks)
	}
	w.pg.Exec(t, "postgres", "DROP DATABASE "+forks[0].Database+" WITH (FORCE)")
	var code int
	select {
	case code = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not end within 2 minutes of its fork's database being dropped")
	}
	s := out.String()
	t.Logf("output:\n%s", s)
	w.assertNoSecrets(s)
	if code != ExitFailed || !strings.Contains(s, "summary: FAILED") || !strings.Contains(s, "fork "+forks[0].Name+" of shop::DATABASE_URL") {
		t.Errorf("exit %d; want 1 and the failure naming the fork %s", code, forks[0].Name)
	}
	if left := w.forks(); len(left) != 0 || !strings.Contains(s, "fork deleted") {
		t.Errorf("add-ons left after a failed dump: %+v", left)
	}
	for _, k := range w.keys() {
		if strings.HasSuffix(k, ".json") {
			t.Errorf("a manifest was published: %s", k)
		}
	}
}

// SIGTERM mid-dump: the fork deleted, exit 143, within 20 s.
func TestBackupForkSIGTERM(t *testing.T) {
	w, name, env := newForkWorld(t, 1000)
	cmd, out := startBinary(t, w.slowDump(name, env), "backup")
	if !out.WaitFor("pg_dump started", 90*time.Second) || !w.waitUploadUnderWay(60*time.Second) {
		t.Error("the dump's upload did not start within 150 s")
	}
	if len(w.forks()) != 1 {
		t.Fatalf("want the fork during the dump, have %+v", w.forks())
	}
	w.terminate(cmd, out)
	if left := w.forks(); len(left) != 0 || !strings.Contains(out.String(), "fork deleted") {
		t.Errorf("add-ons left after SIGTERM: %+v", left)
	}
}

// A run killed outright (SIGKILL) leaves its fork; check reports it, and the next backup removes
// it once older than FORK_TIMEOUT, before forking anew, leaving nothing.
func TestBackupForkLeftover(t *testing.T) {
	w, name, env := newForkWorld(t, 1000)
	cmd, out := startBinary(t, w.slowDump(name, env), "backup")
	if !out.WaitFor("pg_dump started", 90*time.Second) {
		t.Error("the dump did not start within 90 s")
	}
	cmd.Process.Kill()
	cmd.Wait()
	left := w.forks()
	if len(left) != 1 {
		t.Fatalf("want the killed run's fork left, have %+v", left)
	}
	code, s := w.run(env, "check")
	if code != ExitOK || !strings.Contains(s, "forks: "+left[0].Name) || !strings.Contains(s, "heroku addons:destroy "+left[0].Name) {
		t.Errorf("check: exit %d; want the left-over fork reported with its removal command", code)
	}
	w.sim.SetAddonCreated(left[0].Name, time.Now().Add(-13*time.Hour)) // older than FORK_TIMEOUT's 12h
	code, s = w.run(env, "backup")
	removed := strings.Index(s, "removed a fork that an earlier, interrupted backup left behind")
	if code != ExitOK || removed < 0 || !strings.Contains(s, "addon="+left[0].Name) {
		t.Fatalf("backup after a killed run: exit %d; want its fork removed and named", code)
	}
	if started := strings.Index(s, "provisioning a fork of the database"); started < removed {
		t.Error("the left-over was not removed before the new fork")
	}
	if now := w.forks(); len(now) != 0 || w.sim.CreatedAddons() != 2 {
		t.Errorf("add-ons left %+v, %d created; want none of two", now, w.sim.CreatedAddons())
	}
	_, dump := w.manifest("shop", "DATABASE")
	w.restores(dump, name)
}

// An Essential-tier database is refused before any add-on is created, the message naming
// BACKUP_METHOD as the fix; so is FORK_PLAN on that tier, by the configuration; and env: targets.
func TestBackupForkRefused(t *testing.T) {
	w, _, env := newForkWorld(t, 10)
	tiny, dsn := w.pg.CreateDB(t, "tiny")
	w.pg.Exec(t, tiny, "CREATE TABLE t (id int)")
	w.sim.AddApp("tiny")
	w.sim.AddDatabase("tiny", "DATABASE", "heroku-postgresql:essential-0", dsn)
	code, out := w.run(w.forkEnv(env, "tiny"), "backup")
	if code != ExitFailed || !strings.Contains(out, "Heroku cannot fork an Essential-tier database: set BACKUP_METHOD=pg_dump") ||
		!strings.Contains(out, "nothing was provisioned") {
		t.Errorf("an Essential database: exit %d", code)
	}
	if n := w.sim.CreatedAddons(); n != 0 || w.requested("POST", "/addons") != 0 {
		t.Errorf("%d add-ons created for an Essential database", n)
	}
	code, out = w.run(w.forkEnv(env, "tiny"), "check")
	if code != ExitFailed || !strings.Contains(out, "FAIL  tiny:DATABASE_URL: BACKUP_METHOD=fork:") {
		t.Errorf("check of an Essential database: exit %d", code)
	}

	for _, c := range []struct{ set, want string }{
		{"FORK_PLAN=essential-1", "FORK_PLAN"},
		{"BACKUP_TARGETS=env:OTHER_DATABASE_URL", "fork cannot archive env:OTHER_DATABASE_URL"},
		{"HEROKU_APP_NAME=", "HEROKU_APP_NAME"},
	} {
		e := w.forkEnv(env, "shop")
		k, v, _ := strings.Cut(c.set, "=")
		e[k] = v
		e["OTHER_DATABASE_URL"] = "postgres://u@localhost/x"
		code, out := w.run(e, "backup")
		if code != ExitUsage || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d naming %s", c.set, code, ExitUsage, c.want)
		}
	}
	if n := w.sim.CreatedAddons(); n != 0 {
		t.Errorf("%d add-ons created", n)
	}
}

func (w *world) forkEnv(env map[string]string, targets string) map[string]string {
	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	e["BACKUP_TARGETS"] = targets
	return e
}
