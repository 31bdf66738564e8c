package sftpstore

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec/spectest"
)

// A password is reported after the rest is read, so that its fix names the variable key= gives.
func TestParserReportsAPasswordWithTheKeyVariable(t *testing.T) {
	var r spectest.Recorder
	raw := "sftp://backup:hunter2@VPS.example.com:2222/srv/a?key=VPS_KEY"
	u, _ := url.Parse(raw)
	d := Parser{}.Parse(u, r.Field(raw, 1, 1))
	a := settingsOf(d)
	if d.Scheme != Scheme || a.Host != "vps.example.com" || a.Port != 2222 || a.Dir != "/srv/a" || a.KeyVar != "VPS_KEY" || a.User != "backup" {
		t.Errorf("archive %+v", a)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Msg, "has a password in it") ||
		!strings.Contains(r.Problems[0].Fix, "VPS_KEY=") || strings.Contains(r.Problems[0].Msg+r.Problems[0].Fix, "hunter2") {
		t.Errorf("problems %+v", r.Problems)
	}
	if got := d.SecretVars(); len(got) != 1 || got[0] != "VPS_KEY" {
		t.Errorf("SecretVars = %v", got)
	}
}

// Each key variable is checked once however many destinations read it, and each server must
// be pinned by SFTP_KNOWN_HOSTS.
func TestEnvCheckerChecksKeysOnceAndPins(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{KnownHostsVar: knownhosts.Line([]string{"a.example.com"}, sshPub)}
	var r spectest.Recorder
	check := Parser{}.EnvChecker(func(k string) string { return env[k] })
	check(archive("a.example.com"), r.Field("sftp://u@a.example.com/d", 1, 3))
	check(archive("a.example.com"), r.Field("sftp://u@a.example.com/e", 2, 3))
	check(archive("b.example.com"), r.Field("sftp://u@b.example.com/d", 3, 3))
	if len(r.Problems) != 2 || r.Problems[0].Var != DefaultKeyVar || r.Problems[0].Msg != "not set, and ARCHIVE_URL has an sftp:// destination" ||
		r.Problems[1].Var != KnownHostsVar ||
		r.Problems[1].Msg != `destination 3 (sftp://b.example.com): has no line for b.example.com, the server of "sftp://u@b.example.com/d"` {
		t.Errorf("problems %+v", r.Problems)
	}
}

func archive(host string) spec.Archive {
	return Settings{User: "u", Host: host, Port: 22, Dir: "/d", KeyVar: DefaultKeyVar}.Archive()
}
