package bundle

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// A bundle is signed with an ed25519 key that lives only where bundles are made
// (BUNDLE_SIGNING_KEY, on the dyno): the uploader's AWS keys can write objects but never come with
// it, so a bundle they plant cannot carry a signature that BUNDLE_VERIFY_KEY, its public half,
// accepts. Two things are signed: release.json (which holds the slug's checksum) and, inside
// config.age's encryption, the config values with the release they belong to. Each signature
// covers the JSON of its document without the signature, behind a line naming what it is, so that
// one cannot pass for the other.

const (
	sigAlgorithm   = "ed25519"
	releaseContext = "pgoffsite bundle release.json v2\n"
	valuesContext  = "pgoffsite bundle config values v2\n"
)

// MakeKeyHint says how to make a signing key and where its halves go.
const MakeKeyHint = "make a key for bundles alone with `ssh-keygen -t ed25519 -N '' -C pgoffsite-bundles -f bundle-signing`, " +
	"set BUNDLE_SIGNING_KEY to the text of bundle-signing (heroku config:set BUNDLE_SIGNING_KEY=\"$(cat bundle-signing)\"), " +
	"and give restore-app bundle-signing.pub (BUNDLE_VERIFY_KEY or --verify-key FILE)"

// Signature is an ed25519 signature and the fingerprint of the key that made it.
type Signature struct {
	Algorithm string `json:"algorithm"`
	Key       string `json:"key"`   // SHA256:… of the public key, as ssh-keygen -l prints it
	Value     string `json:"value"` // base64
}

// SigningKey is BUNDLE_SIGNING_KEY. Its zero value signs nothing. It never prints its private
// half: String, GoString and MarshalJSON give the fingerprint.
type SigningKey struct {
	priv ed25519.PrivateKey
	pub  VerifyKey
}

// VerifyKey is BUNDLE_VERIFY_KEY: the public half. Its zero value checks nothing.
type VerifyKey struct {
	pub ed25519.PublicKey
	fp  string
}

// ParseSigningKey reads an unencrypted ed25519 private key, OpenSSH (ssh-keygen) or PKCS#8 PEM.
// Its errors never quote the text.
func ParseSigningKey(text string) (SigningKey, error) {
	raw, err := ssh.ParseRawPrivateKey([]byte(strings.TrimSpace(text)))
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return SigningKey{}, errors.New("is encrypted with a passphrase, which a dyno cannot type")
	case err != nil && strings.HasPrefix(strings.TrimSpace(text), "ssh-"):
		return SigningKey{}, errors.New("is a public key (the line of a .pub file); it needs the private key, the text of the file ssh-keygen wrote without .pub")
	case err != nil:
		return SigningKey{}, errors.New("is not a private key (the text of a file that ssh-keygen wrote, -----BEGIN OPENSSH PRIVATE KEY----- and all)")
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		priv = *k
	case ed25519.PrivateKey:
		priv = k
	default:
		return SigningKey{}, fmt.Errorf("is %s key; bundles are signed with ed25519 keys", keyKind(raw))
	}
	pub, err := verifyKeyOf(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{priv: priv, pub: pub}, nil
}

// ParseVerifyKey reads an ed25519 public key as a .pub file holds it (ssh-ed25519 AAAA… comment).
// Its errors never quote the text.
func ParseVerifyKey(text string) (VerifyKey, error) {
	text = strings.TrimSpace(text)
	if strings.Contains(text, "PRIVATE KEY") {
		return VerifyKey{}, errors.New("is a private key; give its public half (the line of bundle-signing.pub, or what `ssh-keygen -y -f bundle-signing` prints)")
	}
	pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	switch {
	case err != nil:
		return VerifyKey{}, errors.New("is not a public key line (ssh-ed25519 AAAA…, the line of bundle-signing.pub)")
	case strings.TrimSpace(string(rest)) != "":
		return VerifyKey{}, errors.New("holds more than one key; give the one public key of BUNDLE_SIGNING_KEY")
	case pk.Type() != ssh.KeyAlgoED25519:
		return VerifyKey{}, fmt.Errorf("is an %s key; bundles are signed with ed25519 keys", pk.Type())
	}
	return verifyKeyOf(pk.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey))
}

func verifyKeyOf(pub ed25519.PublicKey) (VerifyKey, error) {
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return VerifyKey{}, fmt.Errorf("has a public half that cannot be read: %w", err)
	}
	return VerifyKey{pub: pub, fp: ssh.FingerprintSHA256(sp)}, nil
}

func keyKind(k any) string {
	switch fmt.Sprintf("%T", k) {
	case "*rsa.PrivateKey":
		return "an RSA"
	case "*ecdsa.PrivateKey":
		return "an ECDSA"
	case "*dsa.PrivateKey":
		return "a DSA"
	}
	return "a non-ed25519"
}

// IsZero reports whether no key is set.
func (k SigningKey) IsZero() bool { return k.priv == nil }

// Public is the key's public half.
func (k SigningKey) Public() VerifyKey { return k.pub }

func (k SigningKey) String() string {
	if k.IsZero() {
		return "none"
	}
	return "ed25519 signing key " + k.pub.fp
}

// GoString never shows the private half either (%#v).
func (k SigningKey) GoString() string { return k.String() }

// MarshalJSON gives the fingerprint only (a Config marshalled for a log holds it).
func (k SigningKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// IsZero reports whether no key is set.
func (k VerifyKey) IsZero() bool { return k.pub == nil }

// Fingerprint is SHA256:… as ssh-keygen -l prints it.
func (k VerifyKey) Fingerprint() string { return k.fp }

func (k VerifyKey) String() string {
	if k.IsZero() {
		return "none"
	}
	return "ed25519 " + k.fp
}

// Equal reports whether k and o are the same key.
func (k VerifyKey) Equal(o VerifyKey) bool { return k.pub.Equal(o.pub) }

// sign signs msg, read in context (releaseContext or valuesContext).
func (k SigningKey) sign(context string, msg []byte) *Signature {
	sig := ed25519.Sign(k.priv, append([]byte(context), msg...))
	return &Signature{Algorithm: sigAlgorithm, Key: k.pub.fp, Value: base64.StdEncoding.EncodeToString(sig)}
}

// Errors of verification; what names the document (release.json, the config values).
var (
	ErrUnsigned     = errors.New("not signed")
	ErrBadSignature = errors.New("signature does not verify")
)

// verify checks sig over msg, read in context, against k.
func (k VerifyKey) verify(context string, msg []byte, sig *Signature) error {
	switch {
	case sig == nil:
		return ErrUnsigned
	case sig.Algorithm != sigAlgorithm:
		return fmt.Errorf("%w: algorithm %q, not %s", ErrBadSignature, sig.Algorithm, sigAlgorithm)
	case sig.Key != k.fp:
		return fmt.Errorf("%w: it was signed with the key %s, and the verify key is %s", ErrBadSignature, sig.Key, k.fp)
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Value)
	if err != nil || !ed25519.Verify(k.pub, append([]byte(context), msg...), raw) {
		return fmt.Errorf("%w with the key %s: the content is not what was signed", ErrBadSignature, k.fp)
	}
	return nil
}

// signedBytes is what a Record's signature covers: its JSON without the signature.
func (r Record) signedBytes() ([]byte, error) {
	r.Signature = nil
	return canonical(r)
}

// canonical is v's JSON as it reads back: written, read into a fresh T and written again. What
// JSON changes on the way (a string's invalid UTF-8 becomes U+FFFD, written escaped the first
// time and as itself the second) then cannot make the signer's bytes differ from the verifier's.
func canonical[T any](v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var back T
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, err
	}
	return json.Marshal(back)
}

// Sign sets the record's signature (BUNDLE_SIGNING_KEY's); a zero key leaves it unsigned.
func (r *Record) Sign(k SigningKey) error {
	r.Signature = nil
	if k.IsZero() {
		return nil
	}
	b, err := r.signedBytes()
	if err != nil {
		return err
	}
	r.Signature = k.sign(releaseContext, b)
	return nil
}

// Verify checks the record's signature with k.
func (r Record) Verify(k VerifyKey) error {
	b, err := r.signedBytes()
	if err != nil {
		return err
	}
	return k.verify(releaseContext, b, r.Signature)
}
