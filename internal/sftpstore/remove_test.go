package sftpstore

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Remove deletes a file Put stored, on the real OpenSSH server; a file already gone is fine,
// and a key outside the directory is refused.
func TestRemove(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := data(1000, 7)
	if err := s.Put(ctx, store.Object{Key: "shop/DATABASE/a.dump", Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Remove(ctx, "shop/DATABASE/a.dump"); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	wantNoFiles(t, srv.Root)
	if err := s.Remove(ctx, "../escape.dump"); err == nil || !strings.Contains(err.Error(), "not a relative path") {
		t.Fatalf("Remove outside the directory: %v", err)
	}
}
