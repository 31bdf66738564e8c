package agecrypt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// OpenedBy finds the recipients whose private key is in a text, with keys made by the real
// ssh-keygen (ed25519, RSA in OpenSSH, PEM and PKCS#8 form, one behind a passphrase) and
// age-keygen, however the text holds them: alone, with other text around, several in one value,
// on one line, with \n written out. Each recipient it names, the real age command decrypts with
// the key found; the others it does not name.
func TestOpenedByFindsPrivateKeys(t *testing.T) {
	ageBin, keygen := testenv.AgeBinary(t)
	ageFile, ageRecipient := ageKey(t, keygen)
	ed := sshKey(t, "ed25519")
	rsaOpenSSH := sshKey(t, "rsa", "-b", "2048")
	rsaPEM := sshKey(t, "rsa", "-b", "2048", "-m", "PEM")
	rsaPKCS8 := sshKey(t, "rsa", "-b", "2048", "-m", "PKCS8")
	ecdsa := sshKey(t, "ecdsa", "-m", "PEM")
	locked := filepath.Join(t.TempDir(), "id_locked")
	mustRun(t, nil, testenv.SSHKeygenBinary(t), "-q", "-t", "ed25519", "-N", "a passphrase", "-f", locked)
	offline, offlineRecipient := ageKey(t, keygen) // its key stays out of every text below

	pub := func(f string) string { return readFile(t, f+".pub") }
	rs := mustRecipients(t, "# the team\n"+ageRecipient+"\n"+pub(ed)+pub(rsaOpenSSH)+pub(rsaPEM)+pub(rsaPKCS8)+pub(locked)+offlineRecipient+"\n")
	if strings.Contains(readFile(t, rsaPEM), "BEGIN RSA PRIVATE KEY") == false || !strings.Contains(readFile(t, rsaPKCS8), "BEGIN PRIVATE KEY") ||
		!strings.Contains(readFile(t, ecdsa), "BEGIN EC PRIVATE KEY") {
		t.Fatal("ssh-keygen did not write the PEM forms asked for")
	}
	key := func(f string) string { return strings.Join(strings.Fields(pub(f))[:2], " ") } // without the comment
	oneLine := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	escaped := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", `\n`) }
	cases := []struct {
		name, text string
		opens      string // the key file whose recipient it opens
		public     string // that recipient
	}{
		{"age identity file", readFile(t, ageFile), ageFile, ageRecipient},
		{"age identity alone, lower case", strings.ToLower(lastLine(readFile(t, ageFile))), ageFile, ageRecipient},
		{"age identity inside other text", "keys: [" + lastLine(readFile(t, ageFile)) + "] end", ageFile, ageRecipient},
		{"openssh ed25519", readFile(t, ed), ed, key(ed)},
		{"openssh ed25519 on one line", oneLine(readFile(t, ed)), ed, key(ed)},
		{"openssh ed25519 with \\n written out", escaped(readFile(t, ed)), ed, key(ed)},
		{"openssh rsa", readFile(t, rsaOpenSSH), rsaOpenSSH, key(rsaOpenSSH)},
		{"pem rsa", readFile(t, rsaPEM), rsaPEM, key(rsaPEM)},
		{"pkcs8 rsa", "\n\n" + readFile(t, rsaPKCS8) + "trailing words", rsaPKCS8, key(rsaPKCS8)},
		{"behind a passphrase", readFile(t, locked), "", key(locked)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rs.OpenedBy(c.text)
			if len(got) != 1 {
				t.Fatalf("OpenedBy found %d recipients, want 1: %+v", len(got), got)
			}
			if got[0].Public == offlineRecipient {
				t.Fatal("the offline key's recipient was named")
			}
			// What comes back is the public key as the recipients list has it, nothing else.
			if want := c.public; got[0].Public != want {
				t.Fatalf("Public = %q, want %q", got[0].Public, want)
			}
			if c.opens == "" {
				return // the real age command would ask for the passphrase
			}
			// The real age command, given the key found, decrypts what is encrypted to the
			// recipient named: the finding is real.
			plain := plaintext(1000, 7)
			ct, _ := encrypt(t, mustRecipients(t, got[0].Public), plain)
			file := filepath.Join(t.TempDir(), "x.age")
			if err := os.WriteFile(file, ct, 0o600); err != nil {
				t.Fatal(err)
			}
			if out := mustRun(t, nil, ageBin, "-d", "-i", c.opens, file); !bytes.Equal(out, plain) {
				t.Fatal("age -d did not give the plaintext")
			}
		})
	}
	// Several keys in one value: each found.
	if got := rs.OpenedBy(readFile(t, ed) + "\n" + readFile(t, ageFile) + readFile(t, rsaPEM)); len(got) != 3 {
		t.Errorf("three keys in one text: %d found", len(got))
	}
	// Nothing private: public keys, an ECDSA key (no recipient of it), a key cut short, words.
	for _, text := range []string{pub(ed) + ageRecipient, readFile(t, ecdsa), readFile(t, ed)[:200] + "-----END OPENSSH PRIVATE KEY-----",
		"AGE-SECRET-KEY-1QQQQ", "", readFile(t, offline)[:40]} {
		if got := rs.OpenedBy(text); len(got) != 0 {
			t.Errorf("OpenedBy(%.40q…) = %+v, want none", text, got)
		}
	}
}

// An ssh-ed25519 key also opens the age1… recipient ssh-to-age makes of its public key: the
// recipient found is the one of the X25519 identity made of the key's seed as ssh-to-age makes
// it, and that identity decrypts a file encrypted to it.
func TestOpenedByEd25519AsX25519(t *testing.T) {
	ed := sshKey(t, "ed25519")
	raw, err := ssh.ParseRawPrivateKey([]byte(readFile(t, ed)))
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.Sum512(raw.(*ed25519.PrivateKey).Seed())
	id, err := age.ParseX25519Identity(strings.ToUpper(bech32Encode("age-secret-key-", h[:32])))
	if err != nil {
		t.Fatalf("the converted identity does not parse: %v", err)
	}
	recipient := id.Recipient().String()
	rs := mustRecipients(t, recipient)
	got := rs.OpenedBy(readFile(t, ed))
	if len(got) != 1 || got[0].Public != recipient || got[0].Type != "X25519" {
		t.Fatalf("OpenedBy = %+v, want %s", got, recipient)
	}
	ct, _ := encrypt(t, rs, []byte("PGDMP"))
	plain, err := decrypt(mustIdentities(t, id.String()), bytes.NewReader(ct))
	if err != nil || string(plain) != "PGDMP" {
		t.Fatalf("the converted identity does not decrypt: %q, %v", plain, err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
