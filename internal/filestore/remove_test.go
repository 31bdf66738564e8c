package filestore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Remove deletes a file Put stored; a file already gone is fine, and a key outside the
// directory is refused.
func TestRemove(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, store.Object{Key: "shop/a.dump", Size: 3}, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Remove(ctx, "shop/a.dump"); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "shop", "a.dump")); !os.IsNotExist(err) {
		t.Fatalf("the file is still there: %v", err)
	}
	if err := s.Remove(ctx, "../escape.dump"); err == nil || !strings.Contains(err.Error(), "not a relative path") {
		t.Fatalf("Remove outside the directory: %v", err)
	}
}
