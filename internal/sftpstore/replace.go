package sftpstore

import (
	"context"
	"fmt"
	"os"
	"path"
)

// Replace writes a small file, replacing one at the same key (the verifier's record beside an
// archive): written to a temporary file beside it (which RemoveStale takes if the run dies) and
// renamed over it with OpenSSH's posix-rename, so a reader sees the old or the new one whole.
// Archives themselves go through Put, which never overwrites.
func (s *Store) Replace(ctx context.Context, key string, body []byte) error {
	loc := s.Location(key)
	if !validKey(key) {
		return fmt.Errorf("sftp: replace %s: key %q is not a relative path inside the store", loc, key)
	}
	final := s.remotePath(key)
	tmp := path.Join(path.Dir(final), "."+path.Base(final)+tempInfix+randomHex(8))
	_, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
			if err != nil {
				return err
			}
			_, err = f.Write(body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = c.sftp.PosixRename(tmp, final)
			}
			if err != nil {
				c.sftp.Remove(tmp)
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("sftp: replace %s: %w", loc, err)
	}
	return nil
}
