package testenv

import (
	"os/exec"
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
