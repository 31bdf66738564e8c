package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDrillVars(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"DRILL_PLAN": "essential-2", "DRILL_TIMEOUT": "45m",
		"DRILL_CHECKS": "select count(*) > 0 from orders; select 'a;b' = 'a;b';\n select $$;$$ <> ''"}))
	c, err := LoadFor("drill")
	if err != nil {
		t.Fatal(err)
	}
	if c.Drill.Plan.Name != "heroku-postgresql:essential-2" || c.Drill.Plan.StorageBytes != 32<<30 || c.Drill.Timeout != 45*time.Minute {
		t.Errorf("drill %+v", c.Drill)
	}
	want := []string{"select count(*) > 0 from orders", "select 'a;b' = 'a;b'", "select $$;$$ <> ''"}
	if !reflect.DeepEqual(c.Drill.Checks, want) {
		t.Errorf("checks %q, want %q", c.Drill.Checks, want)
	}
}

// A mistake in a DRILL_ variable fails pgoffsite drill, listed with the others, and never a backup.
func TestDrillVarMistakes(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"DRILL_PLAN": "mini", "DRILL_TIMEOUT": "soon", "DRILL_CHECKS": " ; ;"}))
	if _, err := Load(); err != nil {
		t.Fatalf("Load (backup) reports the drill's variables: %v", err)
	}
	_, err := LoadFor("drill")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("LoadFor(drill): %v, want problems", err)
	}
	msg := err.Error()
	for _, want := range []string{"DRILL_PLAN", "essential-0", "DRILL_TIMEOUT", "DRILL_CHECKS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %s:\n%s", want, msg)
		}
	}
}
