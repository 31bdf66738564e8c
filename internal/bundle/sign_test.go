package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// newKey makes an ed25519 key in OpenSSH's format and reads it back as BUNDLE_SIGNING_KEY is read.
func newKey(t *testing.T) (SigningKey, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "pgoffsite-bundles")
	if err != nil {
		t.Fatal(err)
	}
	text := string(pem.EncodeToMemory(block))
	k, err := ParseSigningKey(text)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	v, err := ParseVerifyKey(string(ssh.MarshalAuthorizedKey(pub)))
	if err != nil || !v.Equal(k.Public()) || v.Fingerprint() != ssh.FingerprintSHA256(pub) {
		t.Fatalf("the public half reads back as %v (%v), want %s", v, err, ssh.FingerprintSHA256(pub))
	}
	return k, text
}

// record is a release.json as bundle writes it, with text that JSON escapes.
func record() Record {
	return Record{BundleVersion: Version, App: "shop", Release: 42, ReleaseID: "0b1c2d3e-release", Description: "Deploy <a&b> café \xff",
		Region: "eu", Stack: "heroku-24", Buildpacks: []string{"heroku/go"}, ProcessTypes: map[string]string{"web": "bin/web", "worker": "bin/worker"},
		Formation: []heroku.Process{{Type: "web", Quantity: 2, Size: "standard-1X", Command: "bin/web"}},
		Addons:    []heroku.AddonUse{{Name: "postgresql-x", Service: "heroku-postgresql", Plan: "heroku-postgresql:standard-0", Attachments: []string{"DATABASE"}, ConfigVars: []string{"DATABASE_URL"}}},
		Domains:   []heroku.Domain{{Hostname: "www.shop.example", Kind: "custom", CNAME: "x.herokudns.com"}}, ConfigVarNames: []string{"DATABASE_URL", "SECRET"},
		ConfigValues: &Config{Key: Key("shop", 42, ConfigName), Recipients: []agecrypt.Recipient{{Type: "X25519", Public: "age1xyz", Fingerprint: "SHA256:abc"}}},
		Slug:         &Slug{ID: "slug-1", Key: Key("shop", 40, SlugName), FromRelease: 40, Bytes: 1234, Checksum: "SHA256:" + strings.Repeat("ab", 32), Stack: "heroku-24"},
		ArchivedAt:   time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC), PgoffsiteVersion: "1.2.3"}
}

// A signed release.json verifies after it is written out and read back, and any change to what
// restore-app would deploy breaks the signature.
func TestRecordSignature(t *testing.T) {
	k, text := newKey(t)
	rec := record()
	if err := rec.Sign(k); err != nil {
		t.Fatal(err)
	}
	blob, _ := json.MarshalIndent(rec, "", "  ")
	if strings.Contains(string(blob), strings.Split(text, "\n")[1]) {
		t.Fatal("the private key appears in release.json")
	}
	var back Record
	if err := json.Unmarshal(blob, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(k.Public()); err != nil {
		t.Fatalf("the record as read back: %v", err)
	}
	tampers := map[string]func(*Record){
		"formation":     func(r *Record) { r.Formation[0].Quantity = 50 },
		"buildpacks":    func(r *Record) { r.Buildpacks = []string{"https://github.com/attacker/bp"} },
		"process types": func(r *Record) { r.ProcessTypes["worker"] = "bash app/steal.sh" },
		"slug checksum": func(r *Record) { r.Slug.Checksum = "SHA256:" + strings.Repeat("cd", 32) },
		"config key":    func(r *Record) { r.ConfigValues.Key = Key("shop", 3, ConfigName) },
		"release":       func(r *Record) { r.Release = 99 },
	}
	for name, tamper := range tampers {
		var r Record
		json.Unmarshal(blob, &r)
		tamper(&r)
		if err := r.Verify(k.Public()); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want a signature that does not verify", name, err)
		}
	}
	other, _ := newKey(t)
	if err := back.Verify(other.Public()); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "signed with the key "+k.Public().Fingerprint()+", and the verify key is "+other.Public().Fingerprint()) {
		t.Errorf("another verify key: %v", err)
	}
	unsigned := record()
	if err := unsigned.Verify(k.Public()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	// A signature made for the values does not pass for release.json's.
	b, _ := unsigned.signedBytes()
	if err := k.Public().verify(releaseContext, b, k.sign(valuesContext, b)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a values signature over release.json's bytes: %v", err)
	}
}

// The keys never print their private half.
func TestSigningKeyPrintsNoSecret(t *testing.T) {
	k, text := newKey(t)
	js, _ := json.Marshal(struct{ K SigningKey }{k})
	for _, shown := range []string{k.String(), k.GoString(), string(js)} {
		for _, line := range strings.Split(text, "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(shown, line) {
				t.Errorf("%s shows the private key", shown)
			}
		}
		if !strings.Contains(shown, k.Public().Fingerprint()) {
			t.Errorf("%s does not name the key's fingerprint", shown)
		}
	}
}
