package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

var _ store.Remover = (*Store)(nil)

// Remove deletes the file at key, and syncs its directory so that the removal survives a crash;
// a file that is not there is not an error.
func (s *Store) Remove(ctx context.Context, key string) error {
	p := s.Location(key)
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return fmt.Errorf("filestore: remove %s: key %q is not a relative path inside the store", p, key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: remove %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: remove %s: %w", p, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: remove %s: %w", p, err)
	}
	return nil
}
