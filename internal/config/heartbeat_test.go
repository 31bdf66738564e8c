package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Each command that reports a run has its own heartbeat variable; HEARTBEAT_URL is backup's
// alone, and a command whose variable is unset pings nothing.
func TestEachCommandItsOwnHeartbeat(t *testing.T) {
	setEnv(t, with(valid(), map[string]string{"HEARTBEAT_URL": "https://hc-ping.com/backup", "VERIFY_HEARTBEAT_URL": "https://hc-ping.com/verify/",
		"STATUS_HEARTBEAT_URL": "https://hc-ping.com/status", "DRILL_HEARTBEAT_URL": "https://hc-ping.com/backup"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for command, want := range map[string][2]string{
		"backup": {"HEARTBEAT_URL", "https://hc-ping.com/backup"}, "verify": {"VERIFY_HEARTBEAT_URL", "https://hc-ping.com/verify"},
		"status": {"STATUS_HEARTBEAT_URL", "https://hc-ping.com/status"}, "drill": {"DRILL_HEARTBEAT_URL", "https://hc-ping.com/backup"},
		"bundle": {"BUNDLE_HEARTBEAT_URL", ""}, "restore": {"", ""}, "check": {"", ""},
	} {
		if name, url := c.Heartbeat(command); name != want[0] || url != want[1] {
			t.Errorf("Heartbeat(%s) = %s %q, want %s %q", command, name, url, want[0], want[1])
		}
	}
	if got := c.SharedHeartbeats(); !slices.Equal(got, []string{"HEARTBEAT_URL and DRILL_HEARTBEAT_URL hold the same URL"}) {
		t.Errorf("shared: %q", got)
	}
	c.DrillHeartbeatURL = ""
	if got := c.SharedHeartbeats(); got != nil {
		t.Errorf("shared with a heartbeat each: %q", got)
	}
	// Every heartbeat variable is a row of the table, read by the commands that report runs.
	for _, h := range heartbeats(env{}, &c) {
		if i := slices.IndexFunc(Describe(), func(d VarDoc) bool { return d.Name == h.name }); i < 0 || !slices.Contains(Describe()[i].Commands, h.command) {
			t.Errorf("%s is not a row read by %s", h.name, h.command)
		}
	}
}

// A heartbeat URL in plain http is refused naming its own variable, by its command and check;
// a mistake in verify's heartbeat does not stop a backup.
func TestHeartbeatPlainHTTP(t *testing.T) {
	for command, v := range map[string]string{"verify": "VERIFY_HEARTBEAT_URL", "status": "STATUS_HEARTBEAT_URL", "drill": "DRILL_HEARTBEAT_URL", "backup": "HEARTBEAT_URL"} {
		setEnv(t, with(valid(), map[string]string{v: "http://hc-ping.com/x", "HEROKU_APP_NAME": "ops"}))
		for _, c := range []string{command, "check"} {
			_, err := LoadFor(c)
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Var != v || !strings.Contains(ps[0].Message, "uses plain http") {
				t.Errorf("%s with %s in plain http: %v", c, v, err)
			}
		}
		if command != "backup" {
			if _, err := Load(); err != nil {
				t.Errorf("a bad %s stops backup: %v", v, err)
			}
		}
	}
}
