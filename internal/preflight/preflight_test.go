package preflight

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/preflight/preflighttest"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// checkFake answers check's questions about one database.
type checkFake struct {
	accountErr  error
	retention   heroku.Retention
	schedules   []heroku.Schedule
	scheduleErr error
	retentions  int
}

func (f *checkFake) Account(ctx context.Context) (string, error) {
	return "ops@example.com", f.accountErr
}

func (f *checkFake) KeyExpiry(ctx context.Context) (time.Duration, bool, bool, error) {
	return 0, false, true, nil
}

func (f *checkFake) Resolve(ctx context.Context, app, database string) (heroku.Database, error) {
	return heroku.Database{App: app, Attachment: "DATABASE", AddonID: "a1", AddonName: "postgresql-x-1", BillingApp: app, Plan: "heroku-postgresql:essential-0"}, nil
}

func (f *checkFake) Latest(ctx context.Context, db heroku.Database) (heroku.Transfer, error) {
	ok := true
	return heroku.Transfer{Num: 7, FromType: "pg_dump", ToType: "gof3r", Succeeded: &ok, FinishedAt: heroku.Time{Time: time.Now().Add(-time.Hour)}}, nil
}

func (f *checkFake) Retention(ctx context.Context, db heroku.Database) (heroku.Retention, error) {
	f.retentions++
	return f.retention, nil
}

func (f *checkFake) Schedules(ctx context.Context, db heroku.Database) ([]heroku.Schedule, error) {
	return f.schedules, f.scheduleErr
}

var (
	_ KeyChecker    = (*checkFake)(nil)
	_ TargetChecker = (*checkFake)(nil)
	_ Heroku        = (*heroku.Client)(nil)
	_ KeyChecker    = (*heroku.Client)(nil)
)

func TestCheckKeyNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"401", &heroku.APIError{Op: "GET /account", Status: 401, ID: "unauthorized", Message: "Invalid credentials provided."},
			[]string{"FAIL  HEROKU_API_KEY is not accepted by Heroku: GET /account: 401 unauthorized", "fix: create a long-lived key with `heroku authorizations:create",
				"`heroku config:set HEROKU_API_KEY=<the token> -a <this pgoffsite app>`"}},
		{"two factor", &heroku.APIError{Op: "GET /account", Status: 403, ID: "two_factor"}, []string{"FAIL  HEROKU_API_KEY is not accepted by Heroku", "second factor", "heroku config:set HEROKU_API_KEY="}},
		{"outage", errors.New("heroku: account: GET /account: 503 unavailable"), []string{"FAIL  HEROKU_API_KEY could not be checked: heroku: account: GET /account: 503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &preflighttest.Lines{W: &out}
			if Key(context.Background(), c, &checkFake{accountErr: tc.err}) || c.Failed != 1 {
				t.Errorf("a refused key passed (%d failures)", c.Failed)
			}
			for _, s := range tc.want {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	if !Key(context.Background(), &preflighttest.Lines{W: &out}, &checkFake{}) || !strings.Contains(out.String(), "ok    HEROKU_API_KEY belongs to ops@example.com") {
		t.Errorf("a good key:\n%s", out.String())
	}
}

var (
	oldest = heroku.Transfer{Num: 5, FromType: "pg_dump", ToType: "gof3r", NumKeep: 2}
	newer  = heroku.Transfer{Num: 6, FromType: "pg_dump", ToType: "gof3r", NumKeep: 2}
	daily  = heroku.Schedule{UUID: "5ched-1", Name: "DATABASE_URL", Hour: 2, Timezone: "America/Los_Angeles",
		Days: []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}}
)

// TestCheckCaptureModeWarnsOfDeletedManualBackups: capture mode on a plan that keeps two manual
// backups, with two kept: check warns, with the numbers, that every run makes Heroku delete the
// oldest, recommends latest mode with a schedule, and says whether a schedule exists.
func TestCheckCaptureModeWarnsOfDeletedManualBackups(t *testing.T) {
	cfg := config.Config{Mode: "capture", MaxAge: 26 * time.Hour}
	target := config.Target{App: "shop", Database: "DATABASE_URL"}
	full := heroku.Retention{Plan: "heroku-postgresql:essential-0", NumKeep: 2, Manual: []heroku.Transfer{oldest, newer}}
	for _, tc := range []struct {
		name      string
		schedules []heroku.Schedule
		err       error
		want      string
	}{
		{"with a schedule", []heroku.Schedule{daily}, nil,
			"ok    shop:DATABASE_URL: a Heroku backup schedule exists (DATABASE_URL daily at 02:00 America/Los_Angeles): with BACKUP_MODE=latest each run archives its newest backup instead of capturing"},
		{"without one", nil, nil,
			"warn  shop:DATABASE_URL: no Heroku backup schedule: create one with `heroku pg:backups:schedule DATABASE --at '02:00 UTC' -a shop` before setting BACKUP_MODE=latest"},
		{"schedules unreadable", nil, &heroku.APIError{Op: "GET /client/v11/databases/a1/transfer-schedules", Status: 503},
			"warn  shop:DATABASE_URL: could not read Heroku's backup schedules: GET /client/v11/databases/a1/transfer-schedules: 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &preflighttest.Lines{W: &out}
			Target(context.Background(), c, &checkFake{retention: full, schedules: tc.schedules, scheduleErr: tc.err}, cfg, target)
			for _, s := range []string{
				"warn  shop:DATABASE_URL: BACKUP_MODE=capture: each capture makes Heroku delete the oldest manual backup of DATABASE (now b005): heroku-postgresql:essential-0 keeps num_keep=2 manual backups and has 2 now",
				"use BACKUP_MODE=latest with a Heroku backup schedule",
				tc.want,
			} {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			if c.Failed != 0 {
				t.Errorf("%d failures: warnings only", c.Failed)
			}
		})
	}
}

// TestCheckLatestModeNeedsASchedule: latest mode does not touch manual backups (no retention
// warning) but has nothing new to archive without a schedule.
func TestCheckLatestModeNeedsASchedule(t *testing.T) {
	cfg := config.Config{Mode: "latest", MaxAge: 26 * time.Hour}
	target := config.Target{App: "shop", Database: "DATABASE_URL"}
	var out bytes.Buffer
	f := &checkFake{schedules: []heroku.Schedule{daily}}
	Target(context.Background(), &preflighttest.Lines{W: &out}, f, cfg, target)
	if !strings.Contains(out.String(), "ok    shop:DATABASE_URL: Heroku backup schedule: DATABASE_URL daily at 02:00 America/Los_Angeles") ||
		strings.Contains(out.String(), "delete") || f.retentions != 0 {
		t.Errorf("latest mode with a schedule:\n%s", out.String())
	}
	out.Reset()
	Target(context.Background(), &preflighttest.Lines{W: &out}, &checkFake{}, cfg, target)
	if !strings.Contains(out.String(), "warn  shop:DATABASE_URL: no Heroku backup schedule: BACKUP_MODE=latest archives the newest backup Heroku has, and nothing makes new ones; create one with `heroku pg:backups:schedule DATABASE --at '02:00 UTC' -a shop`") {
		t.Errorf("latest mode without a schedule:\n%s", out.String())
	}
}

// listerFake answers the list of the databases the key can see.
type listerFake struct {
	dbs   []heroku.Addon
	err   error
	calls int
}

func (f *listerFake) PostgresAddons(ctx context.Context) ([]heroku.Addon, error) {
	f.calls++
	return f.dbs, f.err
}

// Coverage names each database no target covers, with the BACKUP_TARGETS that adds it; asks
// nothing of Heroku with BACKUP_TARGETS=all; a list Heroku refuses is a warning, not a pass.
func TestCoverage(t *testing.T) {
	dbs := []heroku.Addon{
		{ID: "a1", Name: "postgresql-x-1", App: "shop", Plan: "heroku-postgresql:essential-0", ConfigVars: []string{"DATABASE_URL"}},
		{ID: "a2", Name: "postgresql-y-2", App: "shop", Plan: "heroku-postgresql:standard-0", ConfigVars: []string{"HEROKU_POSTGRESQL_PINK_URL"}},
		{ID: "a3", Name: "postgresql-z-3", App: "blog", Plan: "heroku-postgresql:essential-0", ConfigVars: []string{"DATABASE_URL"}},
	}
	cfg := config.Config{Targets: []config.Target{{App: "shop", Database: "DATABASE_URL"}}}
	var buf bytes.Buffer
	r := &preflighttest.Lines{W: &buf}
	Coverage(context.Background(), r, &listerFake{dbs: dbs}, cfg, map[string]bool{"a1": true})
	out := buf.String()
	for _, s := range []string{"coverage: blog (add-on postgresql-z-3, heroku-postgresql:essential-0) is a Heroku Postgres database no target archives",
		"coverage: shop:HEROKU_POSTGRESQL_PINK (add-on postgresql-y-2", `heroku config:set BACKUP_TARGETS="shop blog shop:HEROKU_POSTGRESQL_PINK"`} {
		if !strings.Contains(out, s) {
			t.Errorf("coverage does not say %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "postgresql-x-1") {
		t.Errorf("a covered database is listed:\n%s", out)
	}

	buf.Reset()
	all := &listerFake{dbs: dbs}
	Coverage(context.Background(), r, all, config.Config{AllTargets: true, Targets: cfg.Targets}, nil)
	if all.calls != 0 || !strings.Contains(buf.String(), "BACKUP_TARGETS=all archives every Heroku Postgres database") {
		t.Errorf("with all: %d lists, %s", all.calls, buf.String())
	}

	buf.Reset()
	Coverage(context.Background(), r, &listerFake{err: errors.New("heroku: 503")}, cfg, nil)
	if !strings.Contains(buf.String(), "could not list the Heroku Postgres databases the key can see: heroku: 503") {
		t.Errorf("a failed list: %s", buf.String())
	}
}
