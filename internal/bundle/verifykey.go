package bundle

import (
	"errors"
	"fmt"
	"os"
)

// TrustedKey is the key a bundle must be signed with to be restored: the one in file (a
// restore's --verify-key) when given, else BUNDLE_VERIFY_KEY (verify), else the public half of
// BUNDLE_SIGNING_KEY (signing): where the bundles are signed, their signature is checked
// without being asked. The zero key checks no signature.
func TrustedKey(file string, verify VerifyKey, signing SigningKey) (VerifyKey, error) {
	if file != "" {
		return ReadVerifyKey(file)
	}
	if verify.IsZero() && !signing.IsZero() {
		return signing.Public(), nil
	}
	return verify, nil
}

// ReadVerifyKey reads a file holding the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub).
func ReadVerifyKey(path string) (VerifyKey, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 64<<10 {
		err = errors.New("is far larger than a public key file")
	}
	if err != nil {
		return VerifyKey{}, fmt.Errorf("cannot read it: %w", err)
	}
	k, err := ParseVerifyKey(string(b))
	if err != nil {
		return VerifyKey{}, fmt.Errorf("%w — give the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub)", err)
	}
	return k, nil
}
