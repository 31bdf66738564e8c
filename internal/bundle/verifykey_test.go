package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// The key a restore trusts: --verify-key's file first, then BUNDLE_VERIFY_KEY, then the public
// half of BUNDLE_SIGNING_KEY; none at all checks no signature.
func TestTrustedKey(t *testing.T) {
	signing, _ := newKey(t)
	other, _ := newKey(t)
	pub, err := ssh.NewPublicKey(other.pub.pub)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "bundle-signing.pub")
	if err := os.WriteFile(file, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		file    string
		verify  VerifyKey
		signing SigningKey
		want    VerifyKey
	}{
		{"the file wins", file, signing.Public(), signing, other.Public()},
		{"BUNDLE_VERIFY_KEY over the signing key", "", other.Public(), signing, other.Public()},
		{"the signing key's public half", "", VerifyKey{}, signing, signing.Public()},
		{"none", "", VerifyKey{}, SigningKey{}, VerifyKey{}},
	} {
		got, err := TrustedKey(tt.file, tt.verify, tt.signing)
		if err != nil || got.IsZero() != tt.want.IsZero() || (!got.IsZero() && !got.Equal(tt.want)) {
			t.Errorf("%s: %v %v, want %v", tt.name, got, err, tt.want)
		}
	}
}

// A file that is not one public key is refused, saying what to give instead.
func TestReadVerifyKeyMistakes(t *testing.T) {
	dir := t.TempDir()
	_, private := newKey(t)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pub"), "cannot read it: "},
		{write("big.pub", strings.Repeat("x", 64<<10+1)), "cannot read it: is far larger than a public key file"},
		{write("private", private), "is a private key; "},
		{write("junk.pub", "hello"), "is not a public key line (ssh-ed25519 AAAA…, the line of bundle-signing.pub) — give the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub)"},
	} {
		if _, err := ReadVerifyKey(tt.path); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %s", filepath.Base(tt.path), err, tt.want)
		}
	}
}
