package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// TestListsTakeSpacesAndCommasAlike: every variable that lists values reads spaces, commas and
// line breaks as one separator; a comma never glues two values into one.
func TestListsTakeSpacesAndCommasAlike(t *testing.T) {
	ids := make([]string, 3)
	for i := range ids {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.Recipient().String()
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sshLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " ops@laptop"

	for _, sep := range []string{",", " ", ", ", "\n", " ,\n"} {
		t.Run(strings.NewReplacer("\n", `\n`).Replace(sep), func(t *testing.T) {
			setEnv(t, with(valid(), map[string]string{
				"ARCHIVE_URL":        "s3://acme-a/x" + sep + "s3://acme-b/y" + sep + "file:///mnt/archive",
				"BACKUP_TARGETS":     "shop" + sep + "shop-two:HEROKU_POSTGRESQL_PINK",
				"RETENTION":          "daily=35d" + sep + "weekly=13w" + sep + "monthly=25m",
				"ARCHIVE_RECIPIENTS": ids[0] + sep + sshLine + sep + ids[1] + sep + ids[2],
			}))
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			var dests []string
			for _, a := range c.Archives {
				dests = append(dests, a.String())
			}
			if want := []string{"s3://acme-a/x", "s3://acme-b/y", "file:///mnt/archive"}; !reflect.DeepEqual(dests, want) {
				t.Errorf("ARCHIVE_URL: destinations %q, want %q", dests, want)
			}
			if want := []Target{{App: "shop", Database: "DATABASE_URL"}, {App: "shop-two", Database: "HEROKU_POSTGRESQL_PINK"}}; !reflect.DeepEqual(c.Targets, want) {
				t.Errorf("BACKUP_TARGETS: %v, want %v", c.Targets, want)
			}
			if got := c.Retention.Listed(); !reflect.DeepEqual(got, []retention.Class{retention.Daily, retention.Weekly, retention.Monthly}) {
				t.Errorf("RETENTION: classes %v", got)
			}
			// One recipient per line, as backup hands them to agecrypt; the SSH key keeps its spaces.
			if want := strings.Join([]string{ids[0], sshLine, ids[1], ids[2]}, "\n"); c.Recipients != want {
				t.Errorf("ARCHIVE_RECIPIENTS read as\n%s\nwant\n%s", c.Recipients, want)
			}
		})
	}
}

// TestRecipientsKeepComments: a recipients file pasted whole reads as before, # lines included.
func TestRecipientsKeepComments(t *testing.T) {
	got := recipientItems("# ops team\nage1aaa\n  # laptop\nage1bbb, age1ccc")
	if want := "# ops team\nage1aaa\n  # laptop\nage1bbb\nage1ccc"; got != want {
		t.Errorf("recipientItems = %q, want %q", got, want)
	}
	// A private key pasted by mistake stays whole, for agecrypt to refuse it by its first line.
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----"
	if got := recipientItems(pem); got != pem {
		t.Errorf("recipientItems(pem) = %q", got)
	}
}

func TestDurationsTakeDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "26h": 26 * time.Hour,
		"90m": 90 * time.Minute, " 2d ": 48 * time.Hour, "1h30m": 90 * time.Minute,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "1.5d", "-1d", "1dd", "1d-2h", "1 day", "1w", "soon"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
	// Every duration variable reads days, through the one parser.
	setEnv(t, with(valid(), map[string]string{"BACKUP_MAX_AGE": "1d", "BACKUP_CAPTURE_TIMEOUT": "1d6h"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxAge != 24*time.Hour || c.CaptureTimeout != 30*time.Hour {
		t.Errorf("BACKUP_MAX_AGE=1d, BACKUP_CAPTURE_TIMEOUT=1d6h read as %s, %s", c.MaxAge, c.CaptureTimeout)
	}
	setEnv(t, with(valid(), map[string]string{"DRILL_TIMEOUT": "2d"}))
	if c, err := LoadFor("drill"); err != nil || c.Drill.Timeout != 48*time.Hour {
		t.Errorf("DRILL_TIMEOUT=2d: %v, %v", c.Drill.Timeout, err)
	}
	ps := loadProblems(t, with(valid(), map[string]string{"BACKUP_MAX_AGE": "1 day"}))
	if s := ps.Error(); !strings.Contains(s, `BACKUP_MAX_AGE: "1 day" is not a duration — write it like 1d, 26h`) {
		t.Errorf("problems:\n%s", s)
	}
}

// TestRetentionUnitNamed: a unit RETENTION does not know is named as it was written.
func TestRetentionUnitNamed(t *testing.T) {
	ps := loadProblems(t, with(valid(), map[string]string{"RETENTION": "daily=35days,weekly=13w"}))
	if s := ps.Error(); !strings.Contains(s, `RETENTION: daily=35days: unit "days" is not one: write 35d`) {
		t.Errorf("problems:\n%s", s)
	}
}
