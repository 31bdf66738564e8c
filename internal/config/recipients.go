package config

import (
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
)

const (
	recipientsVar = "ARCHIVE_RECIPIENTS"
	identityVar   = "AGE_IDENTITY"
)

// checkRecipients checks ARCHIVE_RECIPIENTS, when set, with agecrypt's own parser (the one rule
// for what a recipient is): each of its problems becomes one of ARCHIVE_RECIPIENTS. Its messages
// never echo a line, which may be a secret pasted by mistake.
func (ck *checker) checkRecipients(text string) {
	if text == "" {
		return
	}
	_, err := agecrypt.ParseRecipients(text)
	if err == nil {
		return
	}
	const fix = "put one recipient per line: an age1… public key (`age-keygen -y key.txt` prints it) or an ssh-ed25519 / ssh-rsa public key; keep the identity offline"
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimPrefix(strings.TrimSpace(line), "agecrypt: "); line != "" {
			ck.add(recipientsVar, line, fix)
		}
	}
}
