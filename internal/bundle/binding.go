package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// config.age's plaintext is a JSON document that carries, beside the values, the release they
// belong to: app, release number, release id and the slug's checksum. It is checked after
// decryption against release.json, so values decrypted from one bundle cannot be made to serve
// another: a planted release.json that points at a genuine config.age, or a copy of it, names
// another release than the one inside. Anyone can encrypt to the recipients (they are public), so
// the binding does not make values genuine; the signature inside does, when there is one.

const valuesFormat = "pgoffsite-config-values/2"

// boundValues is config.age's plaintext.
type boundValues struct {
	Format       string            `json:"format"`
	App          string            `json:"app"`
	Release      int               `json:"release"`
	ReleaseID    string            `json:"release_id"`
	SlugChecksum string            `json:"slug_checksum"` // "" for a release without a slug
	Values       map[string]string `json:"values"`
	Signature    *Signature        `json:"signature,omitempty"`
}

func (r Record) slugChecksum() string {
	if r.Slug == nil {
		return ""
	}
	return r.Slug.Checksum
}

// SealValues is the plaintext of config.age for rec's values: bound to rec's release, and signed
// with k unless k is zero.
func SealValues(rec Record, values map[string]string, k SigningKey) ([]byte, error) {
	doc := boundValues{Format: valuesFormat, App: rec.App, Release: rec.Release, ReleaseID: rec.ReleaseID,
		SlugChecksum: rec.slugChecksum(), Values: values}
	if !k.IsZero() {
		b, err := canonical(doc)
		if err != nil {
			return nil, err
		}
		doc.Signature = k.sign(valuesContext, b)
	}
	return json.Marshal(doc)
}

// ErrUnbound is config.age holding the values alone, as pgoffsite wrote it before bundle_version 2:
// nothing in it says which release they belong to.
var ErrUnbound = errors.New("holds the config values alone, bound to no release (written by a pgoffsite before bundle_version 2): nothing shows they belong to this bundle")

// openValues reads config.age's plaintext and checks it belongs to rec; with a verify key, that
// the values are signed by it. unbound is true for values in the old format, which only
// allowUnbound accepts.
func openValues(plain []byte, rec Record, k VerifyKey, allowUnbound bool) (values map[string]string, unbound bool, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(plain, &fields); err != nil {
		return nil, false, fmt.Errorf("is not a JSON object of config values: %w", err)
	}
	if isFlatValues(fields) {
		if !allowUnbound {
			return nil, true, ErrUnbound
		}
		if !k.IsZero() {
			return nil, true, fmt.Errorf("holds config values from before bundle_version 2, %w", ErrUnsigned)
		}
		var flat map[string]string
		if err := json.Unmarshal(plain, &flat); err != nil {
			return nil, true, err
		}
		return flat, true, nil
	}
	var doc boundValues
	dec := json.NewDecoder(strings.NewReader(string(plain)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || doc.Format != valuesFormat {
		return nil, false, fmt.Errorf("is not a document of config values this pgoffsite reads (format %q): %v", doc.Format, err)
	}
	var wrong []string
	check := func(what string, got, want any) {
		if got != want {
			wrong = append(wrong, fmt.Sprintf("%s %v, not %v", what, got, want))
		}
	}
	check("app", doc.App, rec.App)
	check("release", doc.Release, rec.Release)
	check("release id", doc.ReleaseID, rec.ReleaseID)
	check("slug checksum", doc.SlugChecksum, rec.slugChecksum())
	if len(wrong) > 0 {
		return nil, false, fmt.Errorf("belongs to another release than this release.json (%s): values cannot be moved from one bundle to another", strings.Join(wrong, ", "))
	}
	if !k.IsZero() {
		sig := doc.Signature
		doc.Signature = nil
		b, err := canonical(doc)
		if err != nil {
			return nil, false, err
		}
		if err := k.verify(valuesContext, b, sig); err != nil {
			return nil, false, fmt.Errorf("config values: %w", err)
		}
	}
	if doc.Values == nil {
		doc.Values = map[string]string{}
	}
	return doc.Values, false, nil
}

// isFlatValues tells the old format — one string per config var — from the document: the
// document's release is a number and its values an object, which no config var value is.
func isFlatValues(fields map[string]json.RawMessage) bool {
	for _, raw := range fields {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
	}
	return true
}
