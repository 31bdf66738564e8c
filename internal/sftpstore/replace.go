package sftpstore

import (
	"context"
	"fmt"
	"os"
	"path"
)

// Replace writes a small file, replacing one at the same key (the verifier's record beside an
// archive): written to a temporary file beside it and renamed over it with OpenSSH's
// posix-rename, so a reader sees the old or the new one whole. A temporary file that cannot be
// removed after a failure is named in the error, as Put's are, and a later backup run takes
// it. Archives themselves go through Put, which never overwrites.
func (s *Store) Replace(ctx context.Context, key string, body []byte) error {
	loc := s.Location(key)
	if !validKey(key) {
		return fmt.Errorf("sftp: replace %s: key %q is not a relative path inside the store", loc, key)
	}
	if err := s.replace(ctx, s.remotePath(key), body); err != nil {
		return fmt.Errorf("sftp: replace %s: %w", loc, err)
	}
	return nil
}

func (s *Store) replace(ctx context.Context, final string, body []byte) error {
	var tmp string
	var created, renameSent bool
	c, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			if created {
				// The connection of an earlier attempt was lost after its file may have been made.
				if err := removeFile(c, tmp); err != nil {
					return err
				}
			}
			tmp = path.Join(path.Dir(final), "."+path.Base(final)+tempInfix+randomHex(8))
			created, renameSent = true, false
			f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
			if err != nil {
				return fmt.Errorf("create %s: %w", tmp, err)
			}
			_, err = f.Write(body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", tmp, err)
			}
			renameSent = true
			if err := c.sftp.PosixRename(tmp, final); err != nil {
				return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
			}
			created = false
			return nil
		})
	})
	if err != nil {
		err = s.explain(c, err, final, true)
	}
	if err == nil || !created {
		return err
	}
	return s.settle(ctx, err, tmp, final, int64(len(body)), renameSent && (c == nil || c.isDead()))
}
