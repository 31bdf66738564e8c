package config

import (
	"fmt"
	"os"
	"slices"
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
	rs, err := agecrypt.ParseRecipients(text)
	if err != nil {
		const fix = "put one recipient per line (or separate them by spaces or commas): an age1… public key (`age-keygen -y key.txt` prints it) or an ssh-ed25519 / ssh-rsa public key; keep the identity offline"
		for _, line := range strings.Split(err.Error(), "\n") {
			if line = strings.TrimPrefix(strings.TrimSpace(line), "agecrypt: "); line != "" {
				ck.add(recipientsVar, line, fix)
			}
		}
		return
	}
	ck.keysOnDyno(rs)
}

// keysOnDyno refuses every recipient whose private key is in this environment, in any variable
// (SFTP_PRIVATE_KEY, a destination's key=NAME, AGE_IDENTITY, a deploy key of the app): the dyno
// could decrypt its own archives, and so could whoever steals its config, which is what the
// encryption is for. Only the variables' names and the recipients' fingerprints are shown.
func (ck *checker) keysOnDyno(rs *agecrypt.Recipients) {
	environ := os.Environ()
	slices.Sort(environ)
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if name == recipientsVar {
			continue // a private key there is the parser's problem
		}
		for _, r := range rs.OpenedBy(value) {
			ck.addDecrypts(recipientsVar,
				fmt.Sprintf("the %s recipient %s is the public half of the private key in %s: this dyno, and whoever steals its config, could decrypt every archive", r.Type, r.Fingerprint, name),
				"make an identity kept offline: run `age-keygen -o key.txt` on a machine you trust, put only its public half (`age-keygen -y key.txt`) in ARCHIVE_RECIPIENTS in place of this recipient, and keep key.txt off Heroku; "+
					"keep the old private key safe too, since the archives made so far open only with it")
		}
	}
}
