package cli

import (
	"strings"
	"testing"
)

// BACKUP_TARGETS=all against the simulator, real Postgres and MinIO: check names each database
// no target covers and the BACKUP_TARGETS that adds them; backup with all archives every Postgres
// database the key sees once (one shared with another app included, once), less BACKUP_EXCLUDE,
// from one paged list of the account's add-ons; an exclusion that matches nothing stops the run.
func TestAllTargets(t *testing.T) {
	w := newWorld(t)
	w.sim.SetPageLimit(2)
	w.database("shop", "DATABASE", 20)
	w.database("shop", "HEROKU_POSTGRESQL_PINK", 20)
	core, _ := w.database("core", "DATABASE", 20)
	w.sim.AddApp("web")
	w.sim.Attach(core, "web", "DATABASE", nil)
	w.database("blog", "DATABASE", 20)
	w.sim.AddAddon("shop", "REDIS", "heroku-redis:mini")

	code, out := w.run(w.env("shop"), "check")
	if code != ExitOK {
		t.Errorf("check: exit %d, want %d (an uncovered database is a warning)", code, ExitOK)
	}
	for _, s := range []string{"warn  coverage: shop:HEROKU_POSTGRESQL_PINK (add-on postgresql-", "warn  coverage: core (add-on", "warn  coverage: blog (add-on",
		`heroku config:set BACKUP_TARGETS="shop blog core shop:HEROKU_POSTGRESQL_PINK" -a THIS_APP`} {
		if !strings.Contains(out, s) {
			t.Errorf("check does not say %q", s)
		}
	}
	if strings.Contains(out, "coverage: web") || strings.Count(out, "warn  coverage:") != 3 {
		t.Errorf("check lists %d uncovered databases, want 3 (core once, not again as web's)", strings.Count(out, "warn  coverage:"))
	}

	env := w.env("all")
	env["BACKUP_EXCLUDE"] = "blog"
	before := len(w.sim.Requests())
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatalf("backup with all: exit %d", code)
	}
	lists, perApp := 0, 0
	for _, r := range w.sim.Requests()[before:] {
		switch {
		case r.Method == "GET" && r.Path == "/addons":
			lists++
		case strings.HasPrefix(r.Path, "/apps/") && strings.HasSuffix(r.Path, "/addons"):
			perApp++
		}
	}
	if lists != 3 || perApp != 0 { // 5 add-ons, pages of 2
		t.Errorf("backup listed the add-ons in %d requests and %d per app, want the 3 pages of one list", lists, perApp)
	}
	archived := map[string]int{}
	for _, k := range w.keys() {
		if strings.HasSuffix(k, ".json") {
			parts := strings.Split(k, "/")
			archived[parts[1]+"/"+parts[2]]++
		}
	}
	want := map[string]int{"shop/DATABASE": 1, "shop/HEROKU_POSTGRESQL_PINK": 1, "core/DATABASE": 1}
	if len(archived) != len(want) {
		t.Errorf("archived %v, want %v", archived, want)
	}
	for k, n := range want {
		if archived[k] != n {
			t.Errorf("archived %v, want %v", archived, want)
			break
		}
	}

	code, out = w.run(env, "check")
	if !strings.Contains(out, "ok    coverage: BACKUP_TARGETS=all archives every Heroku Postgres database the key can see (3, less BACKUP_EXCLUDE's 1)") ||
		strings.Contains(out, "warn  coverage") {
		t.Errorf("check with all: exit %d", code)
	}

	if code, out := w.run(env, "status"); code != ExitOK || !strings.Contains(out, "core:DATABASE_URL at ") || strings.Contains(out, "blog:") {
		t.Errorf("status with all: exit %d, want the three archived databases", code)
	}
	status := w.env("all")
	delete(status, "HEROKU_API_KEY")
	if code, out := w.run(status, "status"); code != ExitUsage || !strings.Contains(out, "BACKUP_TARGETS=all: listing the Heroku databases needs HEROKU_API_KEY") {
		t.Errorf("status with all and no key: exit %d", code)
	}

	// Heroku failing the listing is a failed run (1), not a configuration mistake (2).
	w.sim.Faults().FailNextPath("platform", "/addons", 403, 1, 0)
	if code, out := w.run(env, "backup"); code != ExitFailed || !strings.Contains(out, "BACKUP_TARGETS=all: cannot list the Heroku Postgres databases") || strings.Contains(out, "the configuration has problems") {
		t.Errorf("the listing refused: exit %d, want %d\n%s", code, ExitFailed, out)
	}

	env["BACKUP_EXCLUDE"] = "shop:HEROKU_POSTGRESQL_TEAL"
	if code, out := w.run(env, "backup"); code != ExitUsage || !strings.Contains(out, "BACKUP_EXCLUDE: shop:HEROKU_POSTGRESQL_TEAL matches none of the 4 Heroku Postgres databases") {
		t.Errorf("an exclusion matching nothing: exit %d", code)
	}
}
