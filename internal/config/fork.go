package config

import (
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// MethodFork dumps each Heroku target from a fork of its database made for the dump on the
// pgoffsite app (BACKUP_METHOD=fork).
const MethodFork = "fork"

// Fork is what BACKUP_METHOD=fork reads: the forks' plan and the bound of one fork capture.
// Zero unless BACKUP_METHOD is fork.
type Fork struct {
	Plan    string        // FORK_PLAN: "" forks onto each database's own plan
	Timeout time.Duration // FORK_TIMEOUT
}

// fork checks what BACKUP_METHOD=fork needs, before anything is provisioned: the pgoffsite app
// to make forks on, a plan Heroku can fork onto, and Heroku targets only.
func (ck *checker) fork(e env, c *Config) {
	if c.Method != MethodFork {
		return
	}
	switch {
	case e.AppName == "":
		ck.add("HEROKU_APP_NAME", "not set: BACKUP_METHOD=fork provisions each fork on the pgoffsite app, which dyno metadata names",
			"run `heroku labs:enable runtime-dyno-metadata -a APP` (APP: the pgoffsite app) and deploy again, or set HEROKU_APP_NAME to the app's name")
	case !appNameRE.MatchString(e.AppName):
		ck.add("HEROKU_APP_NAME", ck.q(e.AppName)+" is not a Heroku app name", "set it to the pgoffsite app's name (dyno metadata sets it: heroku labs:enable runtime-dyno-metadata -a APP)")
	}
	if p := strings.ToLower(strings.TrimSpace(e.ForkPlan)); p != "" {
		if !strings.Contains(p, ":") {
			p = heroku.PostgresPlanPrefix + p
		}
		if !strings.HasPrefix(p, heroku.PostgresPlanPrefix) || !heroku.CanFork(p) {
			ck.add("FORK_PLAN", ck.q(e.ForkPlan)+" is not a plan Heroku makes forks on (the Essential tier has no forks)",
				"use a Standard or higher plan, e.g. heroku-postgresql:standard-0, or unset it to fork onto each database's own plan")
		}
		c.Fork.Plan = p
	}
	c.Fork.Timeout = ck.duration("FORK_TIMEOUT", e.ForkTimeout)
	for _, t := range c.Targets {
		if t.Env {
			ck.add("BACKUP_METHOD", "fork cannot archive env:"+t.Database+": only Heroku databases can be forked",
				"archive env: targets in a run with BACKUP_METHOD=pg_dump (it dumps them and Heroku targets alike), or take them out of BACKUP_TARGETS")
		}
	}
}
