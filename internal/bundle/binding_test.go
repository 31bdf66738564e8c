package bundle

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The values open only against the release.json of their own release; in the old format only
// with --allow-unbound-config; with a verify key only when it signed them.
func TestValuesBinding(t *testing.T) {
	values := map[string]string{"SECRET": "sk_live_1", "DATABASE_URL": "postgres://u:p@h/d", "MARKUP": "<b>&amp;</b>"}
	rec := record()
	k, _ := newKey(t)
	plain, err := SealValues(rec, values, k)
	if err != nil {
		t.Fatal(err)
	}
	got, unbound, err := openValues(plain, rec, k.Public(), false)
	if err != nil || unbound || !reflect.DeepEqual(got, values) {
		t.Fatalf("own release: %v %v %v", got, unbound, err)
	}
	if got, _, err := openValues(plain, rec, VerifyKey{}, false); err != nil || !reflect.DeepEqual(got, values) {
		t.Errorf("without a verify key: %v %v", got, err)
	}
	others := map[string]func(*Record){
		"app":           func(r *Record) { r.App = "other" },
		"release":       func(r *Record) { r.Release = 99 },
		"release id":    func(r *Record) { r.ReleaseID = "another-id" },
		"slug checksum": func(r *Record) { r.Slug.Checksum = "SHA256:" + strings.Repeat("cd", 32) },
		"no slug":       func(r *Record) { r.Slug = nil },
	}
	for name, change := range others {
		r := record()
		change(&r)
		if _, _, err := openValues(plain, r, VerifyKey{}, true); err == nil || !strings.Contains(err.Error(), "belongs to another release") {
			t.Errorf("another %s: %v", name, err)
		}
	}

	flat, _ := json.Marshal(values)
	if _, unbound, err := openValues(flat, rec, VerifyKey{}, false); !errors.Is(err, ErrUnbound) || !unbound {
		t.Errorf("old format: %v", err)
	}
	if got, unbound, err := openValues(flat, rec, VerifyKey{}, true); err != nil || !unbound || !reflect.DeepEqual(got, values) {
		t.Errorf("old format allowed: %v %v %v", got, unbound, err)
	}
	if _, _, err := openValues(flat, rec, k.Public(), true); !errors.Is(err, ErrUnsigned) {
		t.Errorf("old format with a verify key: %v", err)
	}

	unsigned, _ := SealValues(rec, values, SigningKey{})
	if _, _, err := openValues(unsigned, rec, k.Public(), false); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned values with a verify key: %v", err)
	}
	other, _ := newKey(t)
	theirs, _ := SealValues(rec, map[string]string{"SECRET": "planted"}, other)
	if _, _, err := openValues(theirs, rec, k.Public(), false); !errors.Is(err, ErrBadSignature) {
		t.Errorf("values signed with another key: %v", err)
	}
	var doc boundValues
	json.Unmarshal(plain, &doc)
	doc.Values["SECRET"] = "changed"
	changed, _ := json.Marshal(doc)
	if _, _, err := openValues(changed, rec, k.Public(), false); !errors.Is(err, ErrBadSignature) {
		t.Errorf("values changed after signing: %v", err)
	}
	if _, _, err := openValues([]byte(`{"format":"pgoffsite-config-values/2","release":42,"extra":1}`), rec, VerifyKey{}, false); err == nil {
		t.Error("a document with an unknown field opened")
	}
}
