package sftpstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

var _ store.Remover = (*Store)(nil)

// Remove deletes the file at key, under the connection's stall watch (on a new connection if
// the kept one turns out lost); a file that is not there is not an error.
func (s *Store) Remove(ctx context.Context, key string) error {
	loc := s.Location(key)
	if !validKey(key) {
		return fmt.Errorf("sftp: remove %s: key %q is not a relative path inside the store", loc, key)
	}
	_, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			err := c.sftp.Remove(s.remotePath(key))
			if err != nil && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("sftp: remove %s: %w", loc, err)
	}
	return nil
}
