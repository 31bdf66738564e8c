package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Replace writes a small file, replacing one at the same key (the verifier's record beside an
// archive): written beside it and renamed over it, so a reader sees the old or the new one
// whole. Archives themselves go through Put, which never overwrites.
func (s *Store) Replace(ctx context.Context, key string, body []byte) error {
	final := s.Location(key)
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return fmt.Errorf("filestore: replace %s: key %q is not a relative path inside the store", final, key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: replace %s: %w", final, err)
	}
	// The temporary name is a Put's: RemoveStale takes it if the run dies here.
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("filestore: replace %s: %w", final, err)
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		if rerr := os.Remove(f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("%w; %s", err, leftBehind(f.Name(), rerr))
		}
		return fmt.Errorf("filestore: replace %s: %w", final, err)
	}
	return nil
}
