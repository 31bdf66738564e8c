// Package agecrypt encrypts archives to age recipients while they stream and decrypts them with
// age identities, in the format of filippo.io/age, so that the `age` command decrypts what
// pgoffsite stores. The dyno only ever holds recipients (public keys): nothing there can decrypt.
package agecrypt

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Recipients are the public keys archives are encrypted to (ARCHIVE_RECIPIENTS). They are
// immutable once parsed and safe for concurrent use.
type Recipients struct {
	list []age.Recipient
	desc []Recipient
}

// Recipient describes one for the manifest: nothing secret.
type Recipient struct {
	Type        string `json:"type"`        // "X25519", "ssh-ed25519", "ssh-rsa"
	Public      string `json:"public"`      // the recipient as written (an SSH key without its comment)
	Fingerprint string `json:"fingerprint"` // SHA256:…, see fingerprint
}

// maxListSize bounds recipients and identity text: a config var is small, and a runaway paste
// should not be parsed line by line for ever.
const maxListSize = 1 << 20

// publicKeyHint is the fix for an identity found where a recipient belongs.
const publicKeyHint = "give its public key instead (`age-keygen -y key.txt`, or `ssh-keygen -y -f id_ed25519`)"

// ParseRecipients reads age recipients-file text: one per line, blank lines and # comments
// allowed; age1… (X25519), ssh-ed25519 and ssh-rsa public keys. Errors name the line number and
// the fix and never echo the line: a line that does not parse may be a secret pasted by mistake.
func ParseRecipients(text string) (*Recipients, error) {
	if len(text) > maxListSize {
		return nil, fmt.Errorf("agecrypt: recipients: %d bytes is too long for a recipients list (at most %d); give one public key per line", len(text), maxListSize)
	}
	rs := &Recipients{}
	var errs []error
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if isIdentityLine(line) {
			// Stop at once: one clear message about the key, not one per line of a PEM block.
			return nil, fmt.Errorf("agecrypt: recipients line %d is a private key (an age identity or an SSH private key), not a recipient: "+
				"it must not be on the dyno, since whoever reads the config could decrypt every archive; "+
				"remove it, keep it offline and %s", n, publicKeyHint)
		}
		r, d, err := parseRecipient(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("recipients line %d: %w", n, err))
			continue
		}
		if first, dup := seen[d.Fingerprint]; dup {
			errs = append(errs, fmt.Errorf("recipients line %d: the same key as line %d; remove one of them", n, first))
			continue
		}
		seen[d.Fingerprint] = n
		rs.list = append(rs.list, r)
		rs.desc = append(rs.desc, d)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("agecrypt: %w", errors.Join(errs...))
	}
	if len(rs.list) == 0 {
		return nil, errors.New("agecrypt: recipients: no recipient given; put one public key per line " +
			"(an age1… recipient from `age-keygen -y key.txt`, or an ssh-ed25519/ssh-rsa public key)")
	}
	return rs, nil
}

// isIdentityLine reports whether line is, or begins, a private key.
func isIdentityLine(line string) bool {
	u := strings.ToUpper(line)
	return strings.HasPrefix(u, "AGE-SECRET-KEY-") || strings.HasPrefix(u, "AGE-PLUGIN-") ||
		(strings.HasPrefix(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY"))
}

// parseRecipient parses one non-empty line. Its errors say what is wrong and how to fix it,
// without the line itself.
func parseRecipient(line string) (age.Recipient, Recipient, error) {
	switch {
	case strings.HasPrefix(strings.ToLower(line), "age1pq1"):
		return nil, Recipient{}, errors.New("post-quantum (age1pq1…) recipients are not supported yet; use an X25519 recipient (`age-keygen -y key.txt` of a key made by plain `age-keygen`)")
	case strings.HasPrefix(strings.ToLower(line), "age1"):
		if strings.ContainsAny(line, ",;") || strings.Count(strings.ToLower(line), "age1") > 1 {
			return nil, Recipient{}, errors.New("several recipients on one line; put each recipient on its own line, as in an age recipients file (not separated by commas or spaces)")
		}
		if strings.ContainsAny(line, " \t") {
			return nil, Recipient{}, errors.New("an age1… recipient is one word; put each recipient on its own line and comments on lines starting with #")
		}
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			if name, ok := pluginName(line); ok {
				// age1NAME1…: a plugin's recipient, which needs a plugin binary to encrypt.
				return nil, Recipient{}, fmt.Errorf("an age plugin recipient (age1%s1…) needs its plugin program, which pgoffsite does not run; use an X25519 recipient (age1…) from `age-keygen`", name)
			}
			return nil, Recipient{}, errors.New("not a valid age1… recipient (a wrong character, or cut short); copy it again from `age-keygen -y key.txt`")
		}
		s := r.String()
		return r, Recipient{Type: "X25519", Public: s, Fingerprint: fingerprint([]byte(s))}, nil
	case strings.HasPrefix(line, "ssh-ed25519 ") || strings.HasPrefix(line, "ssh-rsa "):
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, Recipient{}, errors.New("not a valid SSH public key; copy the whole line of the .pub file (`ssh-keygen -y -f id_ed25519`)")
		}
		r, err := agessh.ParseRecipient(line)
		if err != nil {
			if pk.Type() == "ssh-rsa" {
				return nil, Recipient{}, errors.New("this ssh-rsa key cannot be used by age (age needs RSA keys of at least 2048 bits); use an ssh-ed25519 key or an age1… recipient")
			}
			return nil, Recipient{}, errors.New("not a valid SSH public key; copy the whole line of the .pub file (`ssh-keygen -y -f id_ed25519`)")
		}
		public := pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal())
		return r, Recipient{Type: pk.Type(), Public: public, Fingerprint: ssh.FingerprintSHA256(pk)}, nil
	case strings.HasPrefix(line, "ssh-") || strings.HasPrefix(line, "ecdsa-") || strings.HasPrefix(line, "sk-"):
		return nil, Recipient{}, errors.New("age encrypts only to ssh-ed25519 and ssh-rsa SSH keys; use one of those, or an age1… recipient from `age-keygen`")
	default:
		return nil, Recipient{}, errors.New("not a recipient; give an age1… recipient (`age-keygen -y key.txt`) or an ssh-ed25519/ssh-rsa public key, one per line, comments after #")
	}
}

// pluginName is NAME of a plugin recipient, age1NAME1DATA in bech32 (the separator is the last
// 1): NAME of letters, digits and dashes, DATA of letters and digits. Anything else (a comma, a
// quote, a second recipient) is not called a plugin recipient.
func pluginName(line string) (string, bool) {
	s := strings.ToLower(line)
	if s != line && strings.ToUpper(line) != line { // bech32 is all one case
		return "", false
	}
	i := strings.LastIndexByte(s, '1')
	name, data := s[len("age1"):max(i, len("age1"))], s[i+1:]
	if name == "" || data == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.Trim(data, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return "", false
	}
	return name, true
}

// fingerprint is SSH's style, SHA256: and the unpadded base64 of the SHA-256 of b, applied to
// the key bytes of an SSH key and to the recipient string of an age1… key, so that an
// identity's fingerprint is the same as its recipient's.
func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Describe says what the archives are encrypted to, in the order given.
func (r *Recipients) Describe() []Recipient {
	if r == nil {
		return nil
	}
	return append([]Recipient(nil), r.desc...)
}
