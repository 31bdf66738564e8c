package filestore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Replace writes a record and a later one over it, leaving no temporary file; a key outside the
// store is refused.
func TestReplace(t *testing.T) {
	s, dir := newStore(t)
	ctx := context.Background()
	key := "shop/DATABASE/2026/11/23/x.verified.json"
	if err := os.MkdirAll(filepath.Join(dir, "shop/DATABASE/2026/11/23"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"passed":false}`, `{"passed":true}`} {
		if err := s.Replace(ctx, key, []byte(body)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil || string(got) != body {
			t.Errorf("after Replace(%s): %q %v", body, got, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "shop/DATABASE/2026/11/23"))
	if len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	if err := s.Replace(ctx, "../escape.verified.json", []byte("x")); err == nil {
		t.Error("a key outside the store was written")
	}
}
