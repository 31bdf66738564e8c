package agecrypt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// The identity comes from the file before AGE_IDENTITY; its problems name where it came from
// and never hold its text; the text comes back even when it does not parse, for the secrets.
func TestLoadIdentities(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := id.String()
	file := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(file, []byte("# a comment\n"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, text, err := LoadIdentities("", ""); ids != nil || text != "" || err != nil {
		t.Fatalf("nothing given: %v %q %v", ids, text, err)
	}
	if ids, text, err := LoadIdentities("", key); err != nil || ids == nil || text != key {
		t.Fatalf("AGE_IDENTITY: %v %v", ids, err)
	}
	cut := key[:40]
	_, text, err := LoadIdentities("", cut)
	if err == nil || !strings.HasPrefix(err.Error(), "AGE_IDENTITY: ") || strings.Contains(err.Error(), cut) || text != cut {
		t.Errorf("a cut-short AGE_IDENTITY: %v (text %q)", err, text)
	}
	if ids, _, err := LoadIdentities(file, cut); err != nil || ids == nil {
		t.Errorf("--identity FILE with a broken AGE_IDENTITY: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, nil, 0o600)
	if _, _, err := LoadIdentities(empty, ""); err == nil || !strings.Contains(err.Error(), "--identity "+empty+": the file is empty") {
		t.Errorf("an empty identity file: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.txt")
	if _, _, err := LoadIdentities(missing, key); err == nil || !strings.HasPrefix(err.Error(), "--identity "+missing+": cannot read the identity file") {
		t.Errorf("a missing identity file: %v", err)
	}
}
