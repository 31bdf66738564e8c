package config

import (
	"slices"
	"strings"
	"testing"
)

// TestEnvTargetMessages: a missing env:VAR is one problem, with a fix that produces VAR; a Heroku
// key is asked for only where a Heroku database is listed; fixes reach the user as written.
func TestEnvTargetMessages(t *testing.T) {
	base := with(valid(), map[string]string{"ARCHIVE_URL": "file:///mnt/archive"}, "HEROKU_API_KEY")

	ps := loadProblems(t, with(base, map[string]string{"BACKUP_TARGETS": "env:MISSING_URL, env:OTHER"}))
	got := map[string]Problem{}
	for _, p := range ps {
		got[p.Var] = p
	}
	if len(ps) != 2 {
		t.Errorf("problems:\n%s\nwant MISSING_URL's and OTHER's only (no HEROKU_API_KEY: no Heroku database is listed)", ps)
	}
	// `heroku addons:attach --as NAME` sets NAME_URL: the hint's --as must make the variable named.
	if fix := got["MISSING_URL"].Fix; !strings.Contains(fix, "which sets MISSING_URL: heroku addons:attach ADDON --credential backup --as MISSING -a THIS_APP") {
		t.Errorf("MISSING_URL's fix: %s", fix)
	}
	if fix := got["OTHER"].Fix; !strings.Contains(fix, "heroku config:set OTHER=") || !strings.Contains(fix, "--as OTHER -a THIS_APP`, which sets OTHER_URL, and name env:OTHER_URL in BACKUP_TARGETS") {
		t.Errorf("OTHER's fix: %s", fix)
	}

	ps = loadProblems(t, with(base, map[string]string{"BACKUP_TARGETS": "shop env:MISSING_URL"}))
	if !strings.Contains(ps.Error(), "HEROKU_API_KEY: not set") {
		t.Errorf("a Heroku database listed, no key:\n%s", ps)
	}

	// The fix's example URL is not a secret: it is shown whole. The value itself never is.
	ps = loadProblems(t, with(base, map[string]string{"BACKUP_TARGETS": "env:LEGACY_URL", "LEGACY_URL": "mysql://legacy:hunter2-pw@db.example.com/shop"}))
	if s := ps.Error(); !strings.Contains(s, "set it to the database's URL, postgres://user:password@host:port/database") || strings.Contains(s, "[REDACTED]") || strings.Contains(s, "hunter2-pw") {
		t.Errorf("problems:\n%s", s)
	}
}

// TestWeakPasswordDoesNotEatWords: a password that the URL shows anyway (postgres:postgres, a
// local default) is not scrubbed as a word, which would mask "postgres" in every message; any
// other password is.
func TestWeakPasswordDoesNotEatWords(t *testing.T) {
	ps := loadProblems(t, with(valid(), map[string]string{"ARCHIVE_URL": "file:///mnt/archive", "BACKUP_TARGETS": "env:DB_URL env:L_URL",
		"DB_URL": "postgres://postgres:postgres@127.0.0.1:5432/shop", "L_URL": "mysql://legacy@db.example.com/shop"}))
	if s := ps.Error(); !strings.Contains(s, "L_URL: is not a postgres:// URL") || !strings.Contains(s, "postgres://user:password@host:port/database") {
		t.Errorf("problems:\n%s", s)
	}
	if p, ok := urlPassword("postgres://backup:Xk29vq7Lw3@db.example.com/shop"); !ok || p != "Xk29vq7Lw3" {
		t.Errorf("a real password: %q %v, want it scrubbed", p, ok)
	}
	setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": "env:DB_URL", "DB_URL": "postgres://backup:Xk29vq7Lw3@db.example.com/shop"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Secrets(); !slices.Contains(s, "Xk29vq7Lw3") {
		t.Errorf("secrets %q lack the password", s)
	}
}
