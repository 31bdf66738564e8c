package agecrypt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"regexp"
	"slices"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// OpenedBy lists the recipients of r whose private key is in text (see PublicHalves): what text
// could decrypt. Nothing of text is returned.
func (r *Recipients) OpenedBy(text string) []Recipient {
	if r == nil {
		return nil
	}
	var out []Recipient
	halves := PublicHalves(text)
	for _, d := range r.desc {
		if slices.ContainsFunc(halves, func(h Recipient) bool { return h.Type == d.Type && h.Fingerprint == d.Fingerprint }) {
			out = append(out, d)
		}
	}
	return out
}

var (
	// An age identity anywhere in a text, in either case (bech32 is one case or the other).
	identityRE = regexp.MustCompile(`(?i)AGE-SECRET-KEY-1[` + bech32Alphabet + `]+`)
	// The first line of a PEM private key: OpenSSH, RSA, EC, DSA, PKCS#8.
	pemBeginRE = regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----`)
)

// PublicHalves finds the private keys in text — age identities (AGE-SECRET-KEY-1…) and PEM
// private keys (OpenSSH, RSA, EC, PKCS#8), also with their line breaks lost or written as \n —
// and returns the recipients each can decrypt for, described as Describe describes them: an
// age identity's X25519 recipient; an SSH key's public key, and for an ed25519 one also the
// X25519 recipient that ssh-to-age makes of it. An OpenSSH key protected by a passphrase counts
// (its public key is in clear, and the passphrase may be near); a key that cannot be read is
// skipped. No part of a private key is returned.
func PublicHalves(text string) []Recipient {
	var out []Recipient
	for _, m := range identityRE.FindAllString(text, -1) {
		if id, err := age.ParseX25519Identity(strings.ToUpper(m)); err == nil {
			s := id.Recipient().String()
			out = append(out, Recipient{Type: "X25519", Public: s, Fingerprint: fingerprint([]byte(s))})
		}
	}
	for _, m := range pemBeginRE.FindAllStringSubmatchIndex(text, -1) {
		kind := text[m[2]:m[3]]
		body, _, ok := strings.Cut(text[m[1]:], "-----END "+kind+"-----")
		if !ok {
			continue
		}
		pk, ok := pemPublicKey(kind, body)
		if !ok {
			continue
		}
		public := pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal())
		out = append(out, Recipient{Type: pk.Type(), Public: public, Fingerprint: ssh.FingerprintSHA256(pk)})
		if x, ok := ed25519ToX25519(pk); ok {
			out = append(out, Recipient{Type: "X25519", Public: x, Fingerprint: fingerprint([]byte(x))})
		}
	}
	return out
}

// pemPublicKey reads the public key of the PEM private key of this kind whose body (what lies
// between its BEGIN and END lines) is given, however its lines were broken.
func pemPublicKey(kind, body string) (ssh.PublicKey, bool) {
	body = strings.NewReplacer(`\n`, "", `\r`, "").Replace(body)
	body = strings.Join(strings.Fields(body), "")
	if strings.Contains(body, ":") {
		return nil, false // Proc-Type headers: an old-style encrypted key, its public key sealed too
	}
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	raw, err := ssh.ParseRawPrivateKey(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
	var pass *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pass) && pass.PublicKey != nil:
		return pass.PublicKey, true
	case err != nil:
		return nil, false
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, false
	}
	return signer.PublicKey(), true
}

// ed25519ToX25519 is the age1… recipient of an ed25519 key's Montgomery form, as ssh-to-age
// converts it (u = (1+y)/(1-y) mod 2^255-19, RFC 7748): a recipient its private key opens.
func ed25519ToX25519(pk ssh.PublicKey) (string, bool) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return "", false
	}
	ed, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok || len(ed) != ed25519.PublicKeySize {
		return "", false
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := slices.Clone([]byte(ed))
	le[31] &= 0x7f // the sign of x
	slices.Reverse(le)
	y := new(big.Int).SetBytes(le)
	one := big.NewInt(1)
	den := new(big.Int).Mod(new(big.Int).Sub(one, y), p)
	if y.Cmp(p) >= 0 || den.Sign() == 0 {
		return "", false
	}
	u := new(big.Int).Mul(new(big.Int).Add(one, y), new(big.Int).ModInverse(den, p))
	u.Mod(u, p)
	b := u.FillBytes(make([]byte, 32))
	slices.Reverse(b)
	return bech32Encode("age", b), true
}

// bech32Alphabet is bech32's 32 characters (BIP 173), in the order of their values.
const bech32Alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Encode is BIP 173's encoding of data under the lower-case hrp, as age writes its
// recipients (without BIP 173's length limit, as age).
func bech32Encode(hrp string, data []byte) string {
	var values []byte
	acc, bits := 0, 0
	for _, b := range data {
		acc, bits = acc<<8|int(b), bits+8
		for bits >= 5 {
			bits -= 5
			values = append(values, byte(acc>>bits&31))
		}
	}
	if bits > 0 {
		values = append(values, byte(acc<<(5-bits)&31))
	}
	var expanded []byte
	for _, c := range []byte(hrp) {
		expanded = append(expanded, c>>5)
	}
	expanded = append(expanded, 0)
	for _, c := range []byte(hrp) {
		expanded = append(expanded, c&31)
	}
	mod := bech32Polymod(append(append(expanded, values...), 0, 0, 0, 0, 0, 0)) ^ 1
	for i := range 6 {
		values = append(values, byte(mod>>(5*(5-i))&31))
	}
	var s strings.Builder
	s.WriteString(hrp + "1")
	for _, v := range values {
		s.WriteByte(bech32Alphabet[v])
	}
	return s.String()
}

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if top>>i&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}
