package config

import "strings"

const (
	recipientsVar = "ARCHIVE_RECIPIENTS"
	identityVar   = "AGE_IDENTITY"
)

// checkRecipients checks ARCHIVE_RECIPIENTS, when set: public keys only. An identity pasted
// there is the secret half, which must never reach the dyno: it is refused, and never quoted.
func (ck *checker) checkRecipients(text string) {
	if text == "" {
		return
	}
	if strings.Contains(strings.ToUpper(text), "AGE-SECRET-KEY-") {
		ck.add(recipientsVar, "holds an age identity (AGE-SECRET-KEY-...), the secret key that decrypts",
			"put only the recipient here (age1..., which `age-keygen -y identity.txt` prints), keep the identity offline, and remove the identity from this app's config")
	}
}
