package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// maxIdentityFile bounds what --identity reads: an identity file is a few hundred bytes, an SSH
// private key a few kilobytes.
const maxIdentityFile = 1 << 20

// loadIdentities reads the age identities that decrypt encrypted archives: the file --identity
// names, or else env, the text of AGE_IDENTITY (config.Config.AgeIdentity); none (nil) when
// neither is given. secrets are the
// key's text and each of its lines, for the command's redactor and notifier: the key can then
// never appear in what the command writes. Errors name where the key came from and the fix,
// never its text.
func loadIdentities(flagPath, env string) (ids *agecrypt.Identities, secrets []string, err error) {
	text, from := env, "AGE_IDENTITY"
	if flagPath != "" {
		from = "--identity " + flagPath
		f, err := os.Open(flagPath)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: cannot read the identity file: %w", from, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: cannot read the identity file: %w", from, err)
		}
		text = string(b)
	}
	if strings.TrimSpace(text) == "" {
		if flagPath != "" {
			return nil, nil, fmt.Errorf("%s: the file is empty; give an age identity file (`age-keygen -o key.txt`) or an unencrypted OpenSSH private key", from)
		}
		return nil, nil, nil
	}
	secrets = config.ValueSecrets(text)
	ids, err = agecrypt.ParseIdentities(text)
	if err != nil {
		return nil, secrets, fmt.Errorf("%s: %w", from, err)
	}
	return ids, secrets, nil
}

// withIdentityProblem adds a problem with the identity to the configuration's, so that one
// message lists them all; the identity's is scrubbed of its text, which it should not hold.
func withIdentityProblem(cfgErr, idErr error, secrets []string) error {
	if idErr == nil {
		return cfgErr
	}
	idErr = errors.New("  " + scrub.New(secrets...).Scrub(idErr.Error()))
	if cfgErr == nil {
		return idErr
	}
	return errors.Join(cfgErr, idErr)
}
