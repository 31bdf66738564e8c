package config

import (
	"strings"
	"testing"
)

func TestAppBundle(t *testing.T) {
	ps := loadProblems(t, with(valid(), map[string]string{"BACKUP_APP_BUNDLE": "yes please"}))
	found := false
	for _, p := range ps {
		found = found || (p.Var == "BACKUP_APP_BUNDLE" && strings.Contains(p.Message, "not a boolean") && strings.Contains(p.Fix, "true or false"))
	}
	if !found {
		t.Errorf("no problem for BACKUP_APP_BUNDLE in:\n%s", ps)
	}
	for _, v := range []string{"", "false"} {
		setEnv(t, with(valid(), map[string]string{"BACKUP_APP_BUNDLE": v}))
		if c, err := Load(); err != nil || c.AppBundle {
			t.Errorf("BACKUP_APP_BUNDLE=%q: %v, AppBundle %v", v, err, c.AppBundle)
		}
	}
	setEnv(t, with(valid(), map[string]string{"BACKUP_APP_BUNDLE": "true"}))
	if c, err := Load(); err != nil || !c.AppBundle {
		t.Errorf("BACKUP_APP_BUNDLE=true: %v, AppBundle %v", err, c.AppBundle)
	}
}
