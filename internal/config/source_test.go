package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const shopURL = "postgres://backup:pw-9f8e7d6c5b@db.example.com:5432/shop"

// env:VAR targets need only their variable (no Heroku key); BACKUP_METHOD picks how Heroku
// targets are backed up.
func TestEnvTargetsAndMethod(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"BACKUP_TARGETS": "env:SHOP_DATABASE_URL", "SHOP_DATABASE_URL": shopURL}, "HEROKU_API_KEY"))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 1 || c.Targets[0] != (Target{App: "env", Database: "SHOP_DATABASE_URL", Env: true, URL: shopURL}) ||
		c.Targets[0].String() != "env:SHOP_DATABASE_URL" || c.Method != MethodPGBackups {
		t.Errorf("targets %v, method %q", c.Targets, c.Method)
	}
	if urls := c.EnvURLs(); len(urls) != 1 || urls["SHOP_DATABASE_URL"] != shopURL {
		t.Errorf("EnvURLs = %d URLs", len(urls))
	}
	// The URL is the target's secret: no rendering of the configuration shows it.
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%v %+v %#v", c.Targets, c.Targets, c.Targets[0]), string(js)} {
		if strings.Contains(out, "pw-9f8e7d6c5b") || strings.Contains(out, "db.example.com") {
			t.Errorf("the database URL is shown: %s", out)
		}
	}

	setEnv(t, with(valid(), map[string]string{"BACKUP_METHOD": "PG_DUMP"}))
	if c, err := Load(); err != nil || c.Method != MethodPgDump {
		t.Errorf("method %q, %v", c.Method, err)
	}
}

func TestEnvTargetProblems(t *testing.T) {
	for _, c := range []struct {
		vars      map[string]string
		variable  string
		want      string
		forbidden string
	}{
		{map[string]string{"BACKUP_TARGETS": "env:SHOP_DATABASE_URL"}, "SHOP_DATABASE_URL", "not set (BACKUP_TARGETS names env:SHOP_DATABASE_URL)", ""},
		{map[string]string{"BACKUP_TARGETS": "env:SHOP_DATABASE_URL", "SHOP_DATABASE_URL": "mysql://u:pw-9f8e7d6c5b@h/d"}, "SHOP_DATABASE_URL", "is not a postgres:// URL", "pw-9f8e7d6c5b"},
		{map[string]string{"BACKUP_TARGETS": "env:shop-url"}, "BACKUP_TARGETS", "does not name a variable", ""},
		{map[string]string{"BACKUP_TARGETS": "env:A_URL env:A_URL", "A_URL": shopURL}, "BACKUP_TARGETS", "env:A_URL is listed twice", "pw-9f8e7d6c5b"},
		{map[string]string{"BACKUP_METHOD": "dump"}, "BACKUP_METHOD", `"dump" is not a method`, ""},
		{map[string]string{"PG_DUMP_PATH": "/nonexistent/pg_dump"}, "PG_DUMP_PATH", "is not an executable file", ""},
	} {
		ps := loadProblems(t, with(valid(), c.vars))
		found := false
		for _, p := range ps {
			if p.Var == c.variable && strings.Contains(p.Message, c.want) {
				found = true
			}
		}
		if !found || (c.forbidden != "" && strings.Contains(ps.Error(), c.forbidden)) {
			t.Errorf("%v: problems\n%v\nwant %s: %s", c.vars, ps, c.variable, c.want)
		}
	}
	// A Heroku target still needs the key.
	ps := loadProblems(t, with(valid(), map[string]string{"BACKUP_TARGETS": "shop env:A_URL", "A_URL": shopURL}, "HEROKU_API_KEY"))
	if !strings.Contains(ps.Error(), "HEROKU_API_KEY") {
		t.Errorf("problems %v", ps)
	}
}
