package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// AllTargets is BACKUP_TARGETS's word for every Heroku Postgres database the key can see.
const AllTargets = "all"

// TargetOf is the target that archives the Heroku Postgres add-on a: on the app it belongs to,
// by the config var it sets there as BACKUP_TARGETS would name it (the app alone for
// DATABASE_URL, so that its archives are filed as an `app` target's), or by its name when it sets
// none there.
func TargetOf(a heroku.Addon) Target {
	t := Target{App: a.App, Database: a.Name}
	for _, v := range a.ConfigVars {
		if v == "DATABASE_URL" {
			return Target{App: a.App, Database: v}
		}
		if name, ok := strings.CutSuffix(v, "_URL"); ok && t.Database == a.Name {
			t.Database = name
		}
	}
	return t
}

// Entry is t as BACKUP_TARGETS lists it: app for its DATABASE_URL, else app:DATABASE.
func (t Target) Entry() string {
	if !t.Env && t.Database == "DATABASE_URL" {
		return t.App
	}
	return t.String()
}

// WithDatabases is c once Heroku has listed the Postgres add-ons the key can see (dbs): with
// BACKUP_TARGETS=all, each of them not left out by BACKUP_EXCLUDE joins the targets, once. An
// exclusion that matches none of them is an error naming BACKUP_EXCLUDE: it would leave out
// nothing, and the database it meant would be archived unasked.
func (c Config) WithDatabases(dbs []heroku.Addon) (Config, error) {
	if !c.AllTargets {
		return c, nil
	}
	left := c.excluded(dbs)
	var unmatched []string
	for i, e := range c.Exclude {
		if !slices.Contains(left, i) {
			unmatched = append(unmatched, e.Entry())
		}
	}
	if len(unmatched) > 0 {
		return c, fmt.Errorf("BACKUP_EXCLUDE: %s matches none of the %d Heroku Postgres databases the key can see (%s); fix: name each as its app's DATABASE_URL (app), "+
			"another config var it sets there (app:HEROKU_POSTGRESQL_PINK) or its add-on (app:postgresql-globular-83867), on the app the add-on belongs to",
			strings.Join(unmatched, ", "), len(dbs), listed(dbs))
	}
	targets := slices.Clone(c.Targets)
	for _, a := range byEntry(dbs) {
		if c.exclusionOf(a) < 0 {
			targets = append(targets, TargetOf(a))
		}
	}
	c.Targets = targets
	return c, nil
}

// Uncovered are the databases of dbs that no target of c archives and BACKUP_EXCLUDE does not
// leave out, covered being the add-on ids the targets resolve to.
func (c Config) Uncovered(dbs []heroku.Addon, covered map[string]bool) []heroku.Addon {
	var out []heroku.Addon
	for _, a := range byEntry(dbs) {
		if !covered[a.ID] && c.exclusionOf(a) < 0 {
			out = append(out, a)
		}
	}
	return out
}

// excluded are the indexes of the exclusions that match one of dbs.
func (c Config) excluded(dbs []heroku.Addon) []int {
	var out []int
	for _, a := range dbs {
		if i := c.exclusionOf(a); i >= 0 {
			out = append(out, i)
		}
	}
	return out
}

// exclusionOf is the index of the first exclusion that names a (its app, and its add-on name or
// a config var it sets there, spelled as BACKUP_TARGETS may); -1 when none does.
func (c Config) exclusionOf(a heroku.Addon) int {
	for i, e := range c.Exclude {
		if e.App != a.App {
			continue
		}
		want := canonicalDB(e.App, e.Database)
		if strings.TrimPrefix(e.Database, e.App+"::") == a.Name || slices.ContainsFunc(a.ConfigVars, func(v string) bool { return canonicalDB(a.App, v) == want }) {
			return i
		}
	}
	return -1
}

// byEntry is dbs in the order of their targets' entries: runs and messages list them alike
// whatever order Heroku answers in.
func byEntry(dbs []heroku.Addon) []heroku.Addon {
	out := slices.Clone(dbs)
	slices.SortStableFunc(out, func(a, b heroku.Addon) int { return strings.Compare(TargetOf(a).Entry(), TargetOf(b).Entry()) })
	return out
}

// listed names dbs as BACKUP_TARGETS would, for a message.
func listed(dbs []heroku.Addon) string {
	dbs = byEntry(dbs)
	names := make([]string, len(dbs))
	for i, a := range dbs {
		names[i] = TargetOf(a).Entry()
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
