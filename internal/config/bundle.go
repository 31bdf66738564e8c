package config

import (
	"github.com/pgoffsite/pgoffsite/internal/bundle"
)

// The app bundle's own variables: the key that signs bundles where they are made, its public
// half where restore-app runs, and the heartbeat of bundle runs (heartbeats reads it).
const (
	signingKeyVar      = "BUNDLE_SIGNING_KEY"
	verifyKeyVar       = "BUNDLE_VERIFY_KEY"
	bundleHeartbeatVar = "BUNDLE_HEARTBEAT_URL"
)

// bundleVars reads the bundle's variables, the keys with bundle's own parsers (the one rule for
// what a key is). Both keys set must be one key's halves.
func (ck *checker) bundleVars(e env, c *Config) {
	if e.BundleSigningKey != "" {
		k, err := bundle.ParseSigningKey(e.BundleSigningKey)
		if err != nil {
			ck.add(signingKeyVar, err.Error(), bundle.MakeKeyHint)
		}
		c.BundleSigningKey = k
	}
	if e.BundleVerifyKey != "" {
		k, err := bundle.ParseVerifyKey(e.BundleVerifyKey)
		if err != nil {
			ck.add(verifyKeyVar, err.Error(), "give the public half of BUNDLE_SIGNING_KEY: the ssh-ed25519 line of bundle-signing.pub, or what `ssh-keygen -y -f bundle-signing` prints (or --verify-key FILE); "+bundle.MakeKeyHint)
		}
		c.BundleVerifyKey = k
	}
	if s, v := c.BundleSigningKey, c.BundleVerifyKey; !s.IsZero() && !v.IsZero() && !s.Public().Equal(v) {
		ck.add(verifyKeyVar, "is "+v.Fingerprint()+", not the public half of BUNDLE_SIGNING_KEY ("+s.Public().Fingerprint()+")",
			"give the public half of the key that signs the bundles (`ssh-keygen -y -f bundle-signing`), or unset it")
	}
}
