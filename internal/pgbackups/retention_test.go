package pgbackups

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// TestCaptureWarnsWhenHerokuDeletesAManualBackup: on a plan that keeps two manual backups and
// has two, the capture makes Heroku delete the oldest; the log says so with the numbers.
func TestCaptureWarnsWhenHerokuDeletesAManualBackup(t *testing.T) {
	j, fh, _, logs := newJob(t, realDump(t), ModeCapture)
	fh.db.Plan = "heroku-postgresql:essential-0"
	old := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	fh.backup.Retention = &heroku.Retention{Plan: fh.db.Plan, NumKeep: 2, Manual: []heroku.Transfer{
		{Num: 40, FromType: "pg_dump", ToType: "gof3r", CreatedAt: heroku.Time{Time: old}},
		{Num: 41, FromType: "pg_dump", ToType: "gof3r", CreatedAt: heroku.Time{Time: old.Add(24 * time.Hour)}},
	}}
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "delete the oldest manual backup") {
			line = l
		}
	}
	for _, s := range []string{`"num_keep":2`, `"manual_backups":2`, `"plan":"heroku-postgresql:essential-0"`, `"deleted_backup":"b040"`,
		"heroku-postgresql:essential-0 keeps num_keep=2 manual backups", "BACKUP_MODE=latest", "pg:backups:schedule"} {
		if !strings.Contains(line, s) {
			t.Errorf("the warning lacks %s:\n%s", s, logs)
		}
	}

	// Below the limit, nothing is deleted and nothing is said.
	j, fh, _, logs = newJob(t, realDump(t), ModeCapture)
	fh.backup.Retention = &heroku.Retention{NumKeep: 25, Manual: []heroku.Transfer{{Num: 40, FromType: "pg_dump", ToType: "gof3r"}}}
	if res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"}); res.Err != nil || strings.Contains(logs.String(), "delete the oldest") {
		t.Errorf("err %v; a warning below the limit:\n%s", res.Err, logs)
	}
}
