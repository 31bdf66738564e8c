package agecrypt

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxIdentityFile bounds what an identity file may hold: an identity file is a few hundred
// bytes, an SSH private key a few kilobytes.
const maxIdentityFile = 1 << 20

// LoadIdentities reads the identities that decrypt encrypted archives: the file flagPath names
// (--identity), or else env, the text of AGE_IDENTITY; none (nil) when neither is given. text
// is the key's text, also when it does not parse, so that the caller can add it to its secrets.
// Errors name where the key came from and the fix, never its text.
func LoadIdentities(flagPath, env string) (ids *Identities, text string, err error) {
	text, from := env, "AGE_IDENTITY"
	if flagPath != "" {
		from = "--identity " + flagPath
		f, err := os.Open(flagPath)
		if err != nil {
			return nil, "", fmt.Errorf("%s: cannot read the identity file: %w", from, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
		if err != nil {
			return nil, "", fmt.Errorf("%s: cannot read the identity file: %w", from, err)
		}
		text = string(b)
	}
	if strings.TrimSpace(text) == "" {
		if flagPath != "" {
			return nil, "", fmt.Errorf("%s: the file is empty; give an age identity file (`age-keygen -o key.txt`) or an unencrypted OpenSSH private key", from)
		}
		return nil, "", nil
	}
	ids, err = ParseIdentities(text)
	if err != nil {
		return nil, text, fmt.Errorf("%s: %w", from, err)
	}
	return ids, text, nil
}
