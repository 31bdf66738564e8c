package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// BACKUP_TARGETS=all and BACKUP_EXCLUDE as the configuration reads them: all alone or beside
// env:VAR targets, exclusions written as targets; each mistake named with its variable.
func TestAllTargetsAndExclude(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": "all, env:OTHER_DB", "BACKUP_EXCLUDE": "shop-staging shop:HEROKU_POSTGRESQL_PINK",
		"OTHER_DB": "postgres://u:p@db.example.com/x"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{App: "shop-staging", Database: "DATABASE_URL"}, {App: "shop", Database: "HEROKU_POSTGRESQL_PINK"}}
	if !c.AllTargets || len(c.Targets) != 1 || !c.Targets[0].Env || !reflect.DeepEqual(c.Exclude, want) {
		t.Errorf("all: %v, targets %v, exclude %v", c.AllTargets, c.Targets, c.Exclude)
	}

	for _, tc := range []struct {
		vars     map[string]string
		variable string
		says     string
	}{
		{map[string]string{"BACKUP_TARGETS": "all shop"}, "BACKUP_TARGETS", "says all and names Heroku databases too"},
		{map[string]string{"BACKUP_EXCLUDE": "shop"}, "BACKUP_EXCLUDE", "does not say all"},
		{map[string]string{"BACKUP_TARGETS": "all", "BACKUP_EXCLUDE": "env:X_URL"}, "BACKUP_EXCLUDE", "is not a Heroku database"},
		{map[string]string{"BACKUP_TARGETS": "all", "BACKUP_EXCLUDE": "Shop"}, "BACKUP_EXCLUDE", "not a valid Heroku app name"},
		{map[string]string{"BACKUP_TARGETS": "all", "BACKUP_EXCLUDE": "postgres://u:sekrit@h/db"}, "BACKUP_EXCLUDE", "contains a URL"},
	} {
		ps := loadProblems(t, with(valid(), tc.vars))
		if len(ps) != 1 || ps[0].Var != tc.variable || !strings.Contains(ps[0].Message, tc.says) || strings.Contains(ps.Error(), "sekrit") {
			t.Errorf("%v: %v", tc.vars, ps)
		}
	}

	// backup --target (a fan-out's dyno) is given one database: BACKUP_EXCLUDE no longer applies.
	setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": "all", "BACKUP_EXCLUDE": "shop"}))
	if c, err := LoadFor("backup", WithTargets("core:DATABASE_URL")); err != nil || c.AllTargets || len(c.Exclude) != 0 || len(c.Targets) != 1 {
		t.Errorf("--target with all: %+v, %v", c.Targets, err)
	}
}

// The databases Heroku lists become targets once each, named as BACKUP_TARGETS would name them,
// less the exclusions, which match by DATABASE_URL, another config var or the add-on's name; an
// exclusion that matches nothing is an error naming BACKUP_EXCLUDE and what the key sees.
func TestWithDatabases(t *testing.T) {
	dbs := []heroku.Addon{
		{ID: "1", Name: "postgresql-curved-1", App: "shop", ConfigVars: []string{"HEROKU_POSTGRESQL_PINK_URL", "DATABASE_URL"}},
		{ID: "2", Name: "postgresql-round-2", App: "shop", ConfigVars: []string{"HEROKU_POSTGRESQL_ONYX_URL"}},
		{ID: "3", Name: "postgresql-flat-3", App: "core", ConfigVars: []string{"DATABASE_URL"}},
		{ID: "4", Name: "postgresql-odd-4", App: "blog"},
	}
	env := Target{App: "env", Database: "OTHER_URL", Env: true}
	c := Config{AllTargets: true, Targets: []Target{env}}
	got, err := c.WithDatabases(dbs)
	want := []Target{env, {App: "blog", Database: "postgresql-odd-4"}, {App: "core", Database: "DATABASE_URL"},
		{App: "shop", Database: "DATABASE_URL"}, {App: "shop", Database: "HEROKU_POSTGRESQL_ONYX"}}
	if err != nil || !reflect.DeepEqual(got.Targets, want) {
		t.Fatalf("all: %v, %v; want %v", got.Targets, err, want)
	}
	if entries := []string{want[3].Entry(), want[4].Entry(), want[0].Entry()}; !reflect.DeepEqual(entries, []string{"shop", "shop:HEROKU_POSTGRESQL_ONYX", "env:OTHER_URL"}) {
		t.Errorf("entries %q", entries)
	}

	c.Exclude = []Target{{App: "shop", Database: "HEROKU_POSTGRESQL_PINK"}, {App: "core", Database: "DATABASE"}, {App: "blog", Database: "postgresql-odd-4"}}
	got, err = c.WithDatabases(dbs)
	if want := []Target{env, {App: "shop", Database: "HEROKU_POSTGRESQL_ONYX"}}; err != nil || !reflect.DeepEqual(got.Targets, want) {
		t.Errorf("with exclusions: %v, %v; want %v", got.Targets, err, want)
	}
	if un := c.Uncovered(dbs, map[string]bool{"2": true}); len(un) != 0 {
		t.Errorf("uncovered: %v, want none (one covered, three excluded)", un)
	}
	if un := (Config{}).Uncovered(dbs, map[string]bool{"1": true, "3": true}); len(un) != 2 || un[0].ID != "4" || un[1].ID != "2" {
		t.Errorf("uncovered: %v, want add-ons 4 and 2 (blog, then shop:HEROKU_POSTGRESQL_ONYX)", un)
	}

	c.Exclude = append(c.Exclude, Target{App: "web", Database: "DATABASE_URL"})
	_, err = c.WithDatabases(dbs)
	if err == nil || !strings.HasPrefix(err.Error(), "BACKUP_EXCLUDE: web matches none") || !strings.Contains(err.Error(), "blog:postgresql-odd-4, core, shop, shop:HEROKU_POSTGRESQL_ONYX") {
		t.Errorf("an exclusion matching nothing: %v", err)
	}
}
