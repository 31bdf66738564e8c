package config

import (
	"strings"
	"testing"
)

// TestFileRefusedOnADyno: where Heroku runs pgoffsite (DYNO set), a file:// destination is refused
// before anything runs, with why and what to use; elsewhere it is a directory like any other.
func TestFileRefusedOnADyno(t *testing.T) {
	env := with(valid(), map[string]string{"ARCHIVE_URL": "s3://acme-db-archive/pg, file:///mnt/archive"})
	setEnv(t, env)
	if _, err := Load(); err != nil {
		t.Fatalf("without DYNO: %v", err)
	}
	for _, command := range []string{"backup", "check", "verify", "status"} {
		setEnv(t, env)
		t.Setenv("DYNO", "scheduler.4021")
		_, err := LoadFor(command)
		want := `ARCHIVE_URL: destination 2 (file:///mnt/archive): "file:///mnt/archive" is on the disk of this dyno (DYNO=scheduler.4021), which Heroku wipes when the dyno exits: every archive written there would be lost — archive to a store that outlives the dyno: s3://bucket/prefix`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on a dyno: %v\nwant %s", command, err, want)
		}
	}
}
