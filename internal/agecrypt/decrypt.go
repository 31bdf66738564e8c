package agecrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

var (
	// ErrWrongIdentity: none of the identities can open the file (wrapped with how many
	// recipient stanzas it has and the fingerprints of the identities tried).
	ErrWrongIdentity = errors.New("no identity given can decrypt this archive")
	// ErrDamaged: the ciphertext is truncated, tampered with or otherwise not a whole age file.
	ErrDamaged = errors.New("the encrypted archive is damaged, truncated or tampered with")
	// ErrNotEncrypted: the data does not start like an age file.
	ErrNotEncrypted = errors.New("not an age-encrypted file")
)

// Identities decrypt (AGE_IDENTITY text or --identity FILE). They are immutable once parsed and
// safe for concurrent use.
type Identities struct {
	list []age.Identity
	fps  []string
}

// ParseIdentities reads age identity-file text (AGE-SECRET-KEY-1… lines, blank lines and #
// comments) or an unencrypted OpenSSH private key (ed25519 or rsa). Errors never contain the
// key text.
func ParseIdentities(text string) (*Identities, error) {
	if len(text) > maxListSize {
		return nil, fmt.Errorf("agecrypt: identity: %d bytes is too long for an identity file (at most %d)", len(text), maxListSize)
	}
	if strings.Contains(text, "-----BEGIN") {
		return parseSSHIdentity(text)
	}
	ids := &Identities{}
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		upper := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(upper, "AGE-SECRET-KEY-PQ-1"):
			errs = append(errs, fmt.Errorf("identity line %d: post-quantum identities are not supported yet; use an X25519 identity from plain `age-keygen`", n))
		case strings.HasPrefix(upper, "AGE-SECRET-KEY-1"):
			id, err := age.ParseX25519Identity(line)
			if err != nil { // err holds characters of the key: not shown
				errs = append(errs, fmt.Errorf("identity line %d: not a valid AGE-SECRET-KEY-1… identity (a wrong character, or cut short); copy the whole line from the key file", n))
				continue
			}
			ids.list = append(ids.list, id)
			ids.fps = append(ids.fps, fingerprint([]byte(id.Recipient().String())))
		case strings.HasPrefix(upper, "AGE-PLUGIN-"):
			errs = append(errs, fmt.Errorf("identity line %d: an age plugin identity needs its plugin program, which pgoffsite does not run; use an X25519 identity (AGE-SECRET-KEY-1…)", n))
		case strings.HasPrefix(line, "age1") || strings.HasPrefix(line, "ssh-"):
			errs = append(errs, fmt.Errorf("identity line %d: this is a recipient (a public key), which can only encrypt; give the identity file it was made from (age-keygen's key.txt, or the SSH private key)", n))
		default:
			errs = append(errs, fmt.Errorf("identity line %d: not an age identity; give the text of an age identity file (AGE-SECRET-KEY-1… lines) or an unencrypted OpenSSH private key", n))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("agecrypt: %w", errors.Join(errs...))
	}
	if len(ids.list) == 0 {
		return nil, errors.New("agecrypt: identity: no identity given; give the text of an age identity file (`age-keygen -o key.txt`) or an unencrypted OpenSSH private key")
	}
	return ids, nil
}

// parseSSHIdentity reads one OpenSSH private key, as `age -d -i id_ed25519` does.
func parseSSHIdentity(text string) (*Identities, error) {
	pem := []byte(strings.TrimSpace(text) + "\n")
	raw, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		var pass *ssh.PassphraseMissingError
		if errors.As(err, &pass) {
			return nil, errors.New("agecrypt: identity: the SSH private key is protected by a passphrase, which pgoffsite cannot ask for; " +
				"use an unencrypted copy (`cp id_ed25519 copy && ssh-keygen -p -N '' -f copy`) or an age identity")
		}
		return nil, errors.New("agecrypt: identity: not a valid private key; give an unencrypted OpenSSH private key (the whole file, BEGIN and END lines included) or an age identity file")
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, errors.New("agecrypt: identity: this kind of SSH private key is not supported; age decrypts with ssh-ed25519 and ssh-rsa keys")
	}
	id, err := agessh.ParseIdentity(pem)
	if err != nil {
		return nil, fmt.Errorf("agecrypt: identity: a %s key cannot decrypt age files; age decrypts with ssh-ed25519 and ssh-rsa keys", signer.PublicKey().Type())
	}
	return &Identities{list: []age.Identity{id}, fps: []string{ssh.FingerprintSHA256(signer.PublicKey())}}, nil
}

// Fingerprints of the identities' public sides, to say in errors which key was tried: the same
// as the fingerprints Describe gives their recipients.
func (id *Identities) Fingerprints() []string {
	if id == nil {
		return nil
	}
	return append([]string(nil), id.fps...)
}

// ageIntro is how every binary age v1 file begins.
const ageIntro = "age-encryption.org/v1\n"

// DecryptReader reads the age header from r and returns the plaintext as a reader.
// ErrWrongIdentity (wrapped, naming how many recipient stanzas the file has) when no identity
// matches, ErrNotEncrypted when r is not an age file, ErrDamaged for a damaged header. Reading
// the result fails with ErrDamaged (wrapped) on a truncated or tampered payload, never io.EOF;
// an error of r itself is returned wrapped as it is, not as damage, so that the caller can tell
// a failed download from a bad file.
func (id *Identities) DecryptReader(r io.Reader) (io.Reader, error) {
	if id == nil || len(id.list) == 0 {
		return nil, errors.New("agecrypt: decrypt: no identity")
	}
	src := &srcReader{r: r}
	intro := make([]byte, len(ageIntro))
	n, err := io.ReadFull(src, intro)
	intro = intro[:n]
	if src.err != nil {
		return nil, fmt.Errorf("agecrypt: decrypt: read the header: %w", src.err)
	}
	if !bytes.HasPrefix([]byte(ageIntro), intro) || n == 0 {
		if bytes.HasPrefix(intro, []byte("-----BEGIN")) {
			return nil, fmt.Errorf("agecrypt: decrypt: %w: it is ASCII-armored text; store and read the binary age file (`age -d` reads both)", ErrNotEncrypted)
		}
		if bytes.HasPrefix(intro, []byte("age-encryption.org/")) {
			return nil, fmt.Errorf("agecrypt: decrypt: %w: an age format version other than v1", ErrNotEncrypted)
		}
		if n == 0 {
			return nil, fmt.Errorf("agecrypt: decrypt: %w: it is empty", ErrNotEncrypted)
		}
		return nil, fmt.Errorf("agecrypt: decrypt: %w: it does not begin with %q", ErrNotEncrypted, strings.TrimSpace(ageIntro))
	}
	if err != nil { // the intro, cut short
		return nil, fmt.Errorf("agecrypt: decrypt: %w: the header is cut short after %d bytes", ErrDamaged, n)
	}
	plain, err := age.Decrypt(io.MultiReader(bytes.NewReader(intro), src), id.list...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		switch {
		case src.err != nil:
			return nil, fmt.Errorf("agecrypt: decrypt: read the header: %w", src.err)
		case errors.As(err, &noMatch):
			tried := "the identity"
			if len(id.fps) > 1 {
				tried = "the identities"
			}
			return nil, fmt.Errorf("agecrypt: decrypt: %w: the file has %s (%s) and %s %s opens none of them; "+
				"give the identity of one of the recipients in the manifest (if this is one, the file's header is damaged)",
				ErrWrongIdentity, plural(len(noMatch.StanzaTypes), "recipient stanza"), strings.Join(noMatch.StanzaTypes, ", "),
				tried, strings.Join(id.fps, ", "))
		default:
			// age's errors about a header say what is malformed, never a key.
			return nil, fmt.Errorf("agecrypt: decrypt: %w: %v", ErrDamaged, err)
		}
	}
	return &decReader{plain: plain, src: src}, nil
}

// srcReader remembers the error of the underlying reader, to tell it from a damaged file.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// decReader turns age's payload errors into ErrDamaged.
type decReader struct {
	plain io.Reader
	src   *srcReader
	err   error
}

func (d *decReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.plain.Read(p)
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case d.src.err != nil:
		d.err = fmt.Errorf("agecrypt: decrypt: read the ciphertext: %w", d.src.err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		d.err = fmt.Errorf("agecrypt: decrypt: %w: it ends before its last chunk (truncated)", ErrDamaged)
	case strings.Contains(err.Error(), "failed to decrypt and authenticate"):
		d.err = fmt.Errorf("agecrypt: decrypt: %w: a chunk of the payload fails authentication (changed, or cut short)", ErrDamaged)
	default:
		d.err = fmt.Errorf("agecrypt: decrypt: %w: %v", ErrDamaged, err)
	}
	return n, d.err
}

// plural is "1 thing" or "N things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
