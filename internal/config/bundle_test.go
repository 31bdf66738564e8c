package config

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// sshKey makes a key with the real ssh-keygen: its private text and its .pub line.
func sshKey(t *testing.T, typ string, passphrase string) (priv, pub string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "bundle-signing")
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "pgoffsite-bundles", "-f", f}
	if out, err := exec.Command(testenv.SSHKeygenBinary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	p, _ := os.ReadFile(f)
	q, _ := os.ReadFile(f + ".pub")
	return string(p), string(q)
}

// The signing key and its public half are read where they are set; each mistake names its
// variable and says how to make a key, and no problem quotes the private key.
func TestBundleKeys(t *testing.T) {
	priv, pub := sshKey(t, "ed25519", "")
	setEnv(t, with(valid(), map[string]string{"BUNDLE_SIGNING_KEY": priv, "BUNDLE_VERIFY_KEY": pub, "BUNDLE_HEARTBEAT_URL": "https://hc-ping.com/bundle-4f1e"}))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.BundleSigningKey.IsZero() || !c.BundleSigningKey.Public().Equal(c.BundleVerifyKey) || c.BundleHeartbeatURL != "https://hc-ping.com/bundle-4f1e" ||
		c.HeartbeatURL != "" {
		t.Errorf("signing %v verify %v heartbeat %q (backup's %q)", c.BundleSigningKey, c.BundleVerifyKey, c.BundleHeartbeatURL, c.HeartbeatURL)
	}
	// The private half never shows, however the Config is printed.
	js, _ := json.Marshal(c)
	for _, shown := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c.BundleSigningKey, c.BundleSigningKey, c.BundleSigningKey), string(js)} {
		for _, line := range strings.Split(priv, "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(shown, line) {
				t.Fatalf("the signing key appears in %s", shown)
			}
		}
	}
	if !strings.Contains(strings.Join(c.SecretVars(), " "), "BUNDLE_SIGNING_KEY") {
		t.Error("BUNDLE_SIGNING_KEY is not among the secret variables")
	}

	rsa, rsaPub := sshKey(t, "rsa", "")
	locked, _ := sshKey(t, "ed25519", "correct horse")
	_, otherPub := sshKey(t, "ed25519", "")
	cases := []struct {
		name      string
		set       map[string]string
		v, msg    string
		fixPrefix string
	}{
		{"garbage", map[string]string{"BUNDLE_SIGNING_KEY": "not a key at all"}, "BUNDLE_SIGNING_KEY", "is not a private key", "make a key for bundles alone with `ssh-keygen -t ed25519"},
		{"public half", map[string]string{"BUNDLE_SIGNING_KEY": pub}, "BUNDLE_SIGNING_KEY", "is a public key", "make a key"},
		{"passphrase", map[string]string{"BUNDLE_SIGNING_KEY": locked}, "BUNDLE_SIGNING_KEY", "encrypted with a passphrase", "make a key"},
		{"rsa", map[string]string{"BUNDLE_SIGNING_KEY": rsa}, "BUNDLE_SIGNING_KEY", "is an RSA key; bundles are signed with ed25519 keys", "make a key"},
		{"verify garbage", map[string]string{"BUNDLE_VERIFY_KEY": "ssh-ed25519 AAAAnope"}, "BUNDLE_VERIFY_KEY", "is not a public key line", "give the public half"},
		{"verify private", map[string]string{"BUNDLE_VERIFY_KEY": priv}, "BUNDLE_VERIFY_KEY", "is a private key", "give the public half"},
		{"verify rsa", map[string]string{"BUNDLE_VERIFY_KEY": rsaPub}, "BUNDLE_VERIFY_KEY", "is an ssh-rsa key", "give the public half"},
		{"not a pair", map[string]string{"BUNDLE_SIGNING_KEY": priv, "BUNDLE_VERIFY_KEY": otherPub}, "BUNDLE_VERIFY_KEY", "not the public half of BUNDLE_SIGNING_KEY", "give the public half"},
		{"heartbeat", map[string]string{"BUNDLE_HEARTBEAT_URL": "http://hc-ping.com/x"}, "BUNDLE_HEARTBEAT_URL", "uses plain http", "use https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := loadProblems(t, with(valid(), tc.set))
			if len(ps) != 1 || ps[0].Var != tc.v || !strings.Contains(ps[0].Message, tc.msg) || !strings.HasPrefix(ps[0].Fix, tc.fixPrefix) {
				t.Errorf("problems:\n%s\nwant one of %s: %q, fix %q…", ps, tc.v, tc.msg, tc.fixPrefix)
			}
			for _, line := range strings.Split(priv+locked+rsa, "\n") {
				if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(ps.Error(), line) {
					t.Errorf("a private key's line appears in the problems")
				}
			}
		})
	}
	// restore-app's loading reports them too (it checks bundles with the verify key).
	setEnv(t, with(valid(), map[string]string{"BUNDLE_VERIFY_KEY": "ssh-ed25519 AAAAnope"}))
	if _, err := LoadFor("restore-app"); err == nil || !strings.Contains(err.Error(), "BUNDLE_VERIFY_KEY") {
		t.Errorf("LoadFor(restore-app): %v, want the BUNDLE_VERIFY_KEY problem", err)
	}
}
