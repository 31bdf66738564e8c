package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// sshKeygen makes a key with the real ssh-keygen: its private text and its public line.
func sshKeygen(t *testing.T, args ...string) (private, public string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command(testenv.SSHKeygenBinary(t), append([]string{"-q", "-N", "", "-C", "ops@example", "-f", f}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	priv, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(f + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return string(priv), strings.TrimSpace(string(pub))
}

// assertNoKeyText fails when a line of a private key's body appears in out.
func assertNoKeyText(t *testing.T, out string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, line := range strings.Split(k, "\n") {
			line = strings.TrimSpace(line)
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.HasPrefix(line, "#") && strings.Contains(out, line) {
				t.Errorf("a line of a private key appears in:\n%s", out)
			}
		}
	}
}

// A recipient whose private key is anywhere in the environment is refused, naming the
// recipients' variable, the one holding the key and the fix; every key made by the real
// ssh-keygen or age-keygen, in SFTP_PRIVATE_KEY (the case found: its public half as the only
// recipient), in a destination's key=NAME, in AGE_IDENTITY, in a variable pgoffsite never reads.
// The other recipients pass, and no key text is shown.
func TestRecipientWithItsKeyOnTheDyno(t *testing.T) {
	sftpKey, sftpPub := sshKeygen(t, "-t", "ed25519")
	vpsKey, vpsPub := sshKeygen(t, "-t", "rsa", "-b", "2048", "-m", "PEM")
	deployKey, deployPub := sshKeygen(t, "-t", "ed25519")
	pkcs8Key, pkcs8Pub := sshKeygen(t, "-t", "rsa", "-b", "2048", "-m", "PKCS8")
	id := testenv.NewAgeKey(t)
	oldID := testenv.NewAgeKey(t)
	offline := testenv.NewAgeKey(t) // its identity stays off the dyno
	_, hostPub := sshKeygen(t, "-t", "ed25519")
	hostKey := strings.Join(strings.Fields(hostPub)[:2], " ")
	sftp := with(valid(), map[string]string{
		"ARCHIVE_URL":      "sftp://backup@vps.example.com/srv/pgoffsite",
		"SFTP_PRIVATE_KEY": sftpKey,
		"SFTP_KNOWN_HOSTS": "vps.example.com " + hostKey,
	})
	keys := []string{sftpKey, vpsKey, deployKey, pkcs8Key, id.Text, oldID.Text}
	cases := []struct {
		name       string
		set        map[string]string
		recipients string
		keyVar     string // the variable the message names
		kind       string
	}{
		{"SFTP_PRIVATE_KEY's public half alone", nil, sftpPub, "SFTP_PRIVATE_KEY", "ssh-ed25519"},
		{"SFTP_PRIVATE_KEY's among others", nil, offline.Recipient + "\n# the sftp key, by mistake\n" + sftpPub + "\n", "SFTP_PRIVATE_KEY", "ssh-ed25519"},
		{"a destination's key=NAME", map[string]string{"ARCHIVE_URL": "sftp://backup@vps.example.com/srv/pgoffsite?key=VPS_KEY", "VPS_KEY": vpsKey},
			offline.Recipient + "\n" + vpsPub, "VPS_KEY", "ssh-rsa"},
		{"AGE_IDENTITY", map[string]string{"AGE_IDENTITY": id.Text}, id.Recipient + "\n" + offline.Recipient, "AGE_IDENTITY", "X25519"},
		{"a deploy key pgoffsite never reads", map[string]string{"DEPLOY_KEY": deployKey}, deployPub, "DEPLOY_KEY", "ssh-ed25519"},
		{"a PKCS#8 key on one line", map[string]string{"GITHUB_APP_KEY": strings.Join(strings.Fields(pkcs8Key), " ")}, pkcs8Pub, "GITHUB_APP_KEY", "ssh-rsa"},
		{"an old age identity kept in a variable", map[string]string{"OLD_BACKUP_KEY": "# created: 2024\n" + oldID.Text}, oldID.Recipient, "OLD_BACKUP_KEY", "X25519"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars := with(sftp, c.set)
			vars["ARCHIVE_RECIPIENTS"] = c.recipients
			ps := loadProblems(t, vars)
			var found []Problem
			for _, p := range ps {
				if p.Var == "ARCHIVE_RECIPIENTS" {
					found = append(found, p)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d problems of ARCHIVE_RECIPIENTS, want 1:\n%s", len(found), ps)
			}
			p := found[0]
			for _, want := range []string{"the " + c.kind + " recipient SHA256:", "is the public half of the private key in " + c.keyVar, "could decrypt every archive"} {
				if !strings.Contains(p.Message, want) {
					t.Errorf("message lacks %q: %s", want, p)
				}
			}
			for _, want := range []string{"age-keygen -o key.txt", "age-keygen -y key.txt", "ARCHIVE_RECIPIENTS", "off Heroku"} {
				if !strings.Contains(p.Fix, want) {
					t.Errorf("fix lacks %q: %s", want, p)
				}
			}
			assertNoKeyText(t, ps.Error(), keys...)
			// Public keys are not shown either: the fingerprint names the recipient.
			for _, pub := range []string{sftpPub, vpsPub, deployPub, pkcs8Pub} {
				if strings.Contains(ps.Error(), strings.Fields(pub)[1]) {
					t.Errorf("a public key is quoted whole:\n%s", ps)
				}
			}
			// Where archives are read back (verify, restore, drill), a key that opens them is
			// the point: not a problem there.
			if _, err := LoadFor("verify"); err != nil {
				t.Errorf("LoadFor(verify) = %v", err)
			}
			if _, err := LoadFor("drill"); err != nil {
				t.Errorf("LoadFor(drill) = %v", err)
			}
		})
	}

	// The same environment with an offline recipient only is accepted.
	setEnv(t, with(sftp, map[string]string{"ARCHIVE_RECIPIENTS": offline.Recipient + "\n" + deployPub}))
	if _, err := Load(); err != nil {
		t.Errorf("recipients whose keys are elsewhere: %v", err)
	}
}
