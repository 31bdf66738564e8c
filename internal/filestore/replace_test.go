package filestore

import (
	"context"
	"testing"
)

// A record outside the store is refused (the contract itself is storetest's).
func TestReplaceOutsideRefused(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Replace(context.Background(), "../escape.verified.json", []byte("x")); err == nil {
		t.Error("a key outside the store was written")
	}
}
