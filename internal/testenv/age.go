package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AgeBinary returns the real `age` and `age-keygen` commands (Debian package age, which bin/test
// installs): the reference decrypter of encrypted archives. Without them t is skipped (failed in
// CI).
func AgeBinary(t testing.TB) (age, ageKeygen string) {
	t.Helper()
	return lookAgeTool(t, "age"), lookAgeTool(t, "age-keygen")
}

// SSHKeygenBinary returns the real ssh-keygen (Debian package openssh-client). Without it t is
// skipped (failed in CI).
func SSHKeygenBinary(t testing.TB) string {
	t.Helper()
	return lookAgeTool(t, "ssh-keygen")
}

// lookAgeTool finds a Debian-packaged command on PATH.
func lookAgeTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" not found on PATH", "apt-get install -y age openssh-client")
	}
	return p
}

// AgeKey is an identity made by the real age-keygen: its file, the file's text (the secret),
// and its public side.
type AgeKey struct {
	File, Text, Recipient string
}

// NewAgeKey makes a throwaway age identity with the real age-keygen.
func NewAgeKey(t testing.TB) AgeKey {
	t.Helper()
	_, keygen := AgeBinary(t)
	f := filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command(keygen, "-o", f).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	text, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := exec.Command(keygen, "-y", f).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	return AgeKey{File: f, Text: string(text), Recipient: strings.TrimSpace(string(pub))}
}
