package agecrypt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// run runs a real command with a deadline and returns its stdout.
func run(t *testing.T, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), errors.New(err.Error() + ": " + strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func mustRun(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := run(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ageKey makes a key with the real age-keygen and returns the key file and its recipient.
func ageKey(t *testing.T, keygen string) (keyFile, recipient string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "key.txt")
	mustRun(t, nil, keygen, "-o", keyFile)
	return keyFile, strings.TrimSpace(string(mustRun(t, nil, keygen, "-y", keyFile)))
}

// sshKey makes a key with the real ssh-keygen and returns the private key file.
func sshKey(t *testing.T, kind string, extra ...string) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "id_"+kind)
	mustRun(t, nil, testenv.SSHKeygenBinary(t), append([]string{"-q", "-t", kind, "-N", "", "-C", "test@example", "-f", key}, extra...)...)
	return key
}

// What EncryptReader writes, the real age command decrypts to the exact plaintext, with an
// age-keygen key, an ssh-ed25519 key and an ssh-rsa key made by ssh-keygen, each of them a
// recipient of the same file.
func TestAgeCommandDecrypts(t *testing.T) {
	ageBin, keygen := testenv.AgeBinary(t)
	keyFile, recipient := ageKey(t, keygen)
	ed := sshKey(t, "ed25519")
	rsaKey := sshKey(t, "rsa", "-b", "3072")
	text := "# the offline key\n" + recipient + "\n" + readFile(t, ed+".pub") + readFile(t, rsaKey+".pub")
	rs := mustRecipients(t, text)
	for _, n := range []int{0, 1, 65536, 3*65536 + 77} {
		plain := plaintext(n, uint64(n))
		c, size := encrypt(t, rs, plain)
		if size != int64(len(c)) {
			t.Errorf("%d bytes: announced %d, produced %d", n, size, len(c))
		}
		file := filepath.Join(t.TempDir(), "backup.dump.age")
		if err := os.WriteFile(file, c, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{keyFile, ed, rsaKey} {
			got := mustRun(t, nil, ageBin, "-d", "-i", id, file)
			if !bytes.Equal(got, plain) {
				t.Fatalf("%d bytes: age -d -i %s gave %d bytes, not the plaintext", n, filepath.Base(id), len(got))
			}
		}
	}
}

// Files the real age command encrypts, DecryptReader decrypts, with an age identity file and
// with an OpenSSH private key; and the fingerprints agree with ssh-keygen's.
func TestDecryptAgeCommandOutput(t *testing.T) {
	ageBin, keygen := testenv.AgeBinary(t)
	keyFile, recipient := ageKey(t, keygen)
	ed := sshKey(t, "ed25519")
	rsaKey := sshKey(t, "rsa", "-b", "2048")
	plain := plaintext(2*65536+3, 9)
	cases := []struct{ name, identity, recipientArg string }{
		{"X25519", keyFile, recipient},
		{"ssh-ed25519", ed, strings.TrimSpace(readFile(t, ed+".pub"))},
		{"ssh-rsa", rsaKey, strings.TrimSpace(readFile(t, rsaKey+".pub"))},
	}
	for _, c := range cases {
		ciphertext := mustRun(t, plain, ageBin, "-r", c.recipientArg)
		ids := mustIdentities(t, readFile(t, c.identity))
		got, err := decrypt(ids, bytes.NewReader(ciphertext))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: decrypt age -r output: %v (equal %v)", c.name, err, bytes.Equal(got, plain))
		}
		desc := mustRecipients(t, c.recipientArg).Describe()
		if ids.Fingerprints()[0] != desc[0].Fingerprint {
			t.Errorf("%s: identity fingerprint %s, recipient %s", c.name, ids.Fingerprints()[0], desc[0].Fingerprint)
		}
		if c.name != "X25519" {
			fields := strings.Fields(string(mustRun(t, nil, testenv.SSHKeygenBinary(t), "-lf", c.identity+".pub")))
			if len(fields) < 2 || fields[1] != desc[0].Fingerprint {
				t.Errorf("%s: fingerprint %s, ssh-keygen -lf says %v", c.name, desc[0].Fingerprint, fields)
			}
		}
	}
	// A key file of several identities, as age-keygen's files may be concatenated.
	other, _ := ageKey(t, keygen)
	ciphertext := mustRun(t, plain, ageBin, "-r", recipient)
	got, err := decrypt(mustIdentities(t, readFile(t, other)+"\n"+readFile(t, keyFile)), bytes.NewReader(ciphertext))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("two identities: %v", err)
	}
	_, err = decrypt(mustIdentities(t, readFile(t, other)), bytes.NewReader(ciphertext))
	if !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("age -r output, other key: %v, want ErrWrongIdentity", err)
	}
}

// A passphrase-protected SSH key cannot be used and says how to make one that can.
func TestEncryptedSSHKeyRefused(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id_ed25519")
	mustRun(t, nil, testenv.SSHKeygenBinary(t), "-q", "-t", "ed25519", "-N", "a passphrase", "-f", key)
	_, err := ParseIdentities(readFile(t, key))
	if err == nil || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(err.Error(), "ssh-keygen -p") {
		t.Errorf("passphrase-protected key: %v", err)
	}
}

// A stream cut short by its source, and damaged files, are refused by the real age command too:
// the same bytes a destination would hold.
func TestAgeCommandRefusesIncomplete(t *testing.T) {
	ageBin, keygen := testenv.AgeBinary(t)
	keyFile, recipient := ageKey(t, keygen)
	rs := mustRecipients(t, recipient)
	for _, n := range []int{0, 65536, 100000} {
		got, err := encryptFailing(t, rs, n)
		if err != errSource {
			t.Fatalf("source failing after %d bytes: %v", n, err)
		}
		if out, err := run(t, got, ageBin, "-d", "-i", keyFile); err == nil {
			t.Errorf("source failing after %d bytes: age -d decrypted the %d bytes produced to %d bytes", n, len(got), len(out))
		}
	}
}
