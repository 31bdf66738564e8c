package filestore

import (
	"context"
	"strings"
	"testing"
)

// A key outside the directory is refused (the contract itself is storetest's).
func TestRemoveOutsideRefused(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Remove(context.Background(), "../escape.dump"); err == nil || !strings.Contains(err.Error(), "not a relative path") {
		t.Fatalf("Remove outside the directory: %v", err)
	}
}
