package sftpstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/pkg/sftp"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// explain adds to err, an operation's failure on p (a creation when write) over c, what the
// server's answer alone does not say.
func (s *Store) explain(c *conn, err error, p string, write bool) error {
	return s.explainPermission(c, s.explainFailure(c, err), p, write)
}

// explainFailure adds what can be learnt of an SSH_FX_FAILURE, the status SFTP servers answer
// when the system call failed for a reason the protocol has no code for — OpenSSH's answer to a
// full disk and an exhausted quota. While the connection lives, the filesystem's free space
// (statvfs@openssh.com) tells a full disk from the rest; it is asked before the temporary file
// is removed, which frees what the failed write took. Other errors are returned as they are.
func (s *Store) explainFailure(c *conn, err error) error {
	var status *sftp.StatusError
	if c == nil || !errors.As(err, &status) || status.FxCode() != sftp.ErrSSHFxFailure || c.isDead() {
		return err
	}
	dir := s.o.Dir
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var vfs *sftp.StatVFS
	serr := c.run(ctx, min(c.stall, cleanupTimeout), func(*op) error {
		var err error
		vfs, err = c.sftp.StatVFS(dir)
		return err
	})
	checks := fmt.Sprintf("`df -h %s`, `df -i %s` and `quota -u %s` on the server", dir, dir, s.o.User)
	if serr != nil {
		return fmt.Errorf("%w: the server gave no reason (SSH_FX_FAILURE); a full disk or %s's quota is the usual one, "+
			"and its free space could not be asked (%v): check %s", err, s.o.User, serr, checks)
	}
	block := vfs.Frsize
	if block == 0 {
		block = vfs.Bsize
	}
	total, avail := vfs.Blocks*block, vfs.Bavail*block
	where := fmt.Sprintf("the filesystem holding %s has %s free of %s", dir, units.IEC(int64(avail)), units.IEC(int64(total)))
	switch {
	case vfs.Flag&statvfsReadOnly != 0:
		return fmt.Errorf("%w: the filesystem holding %s is mounted read-only on the server (after disk errors, Linux remounts a filesystem read-only): "+
			"see the server's logs (dmesg), or name a directory on another disk in ARCHIVE_URL", err, dir)
	case vfs.Files > 0 && vfs.Favail == 0:
		return fmt.Errorf("%w: the server's disk is full: %s, and no free inode (no file can be created); "+
			"remove files on it, or name a directory on another disk in ARCHIVE_URL", err, where)
	case avail < total/100 || avail < 16<<20:
		return fmt.Errorf("%w: the server's disk is full: %s; free space on it (remove old archives there: "+
			"nothing expires them on an SFTP server), or name a directory on another disk in ARCHIVE_URL", err, where)
	}
	return fmt.Errorf("%w: the server gave no reason (SSH_FX_FAILURE), and %s, so it is not a full disk: "+
		"a quota of %s is the usual other cause (`quota -u %s` on the server), else the server's logs say", err, where, s.o.User, s.o.User)
}

// statvfsReadOnly is statvfs@openssh.com's flag for a read-only filesystem (SSH2_FXE_STATVFS_ST_RDONLY).
const statvfsReadOnly = 0x1

// explainPermission adds, to a permission error on p, which directory refuses the user what:
// the first directory on the way to p that may not be searched, else the one where p, or a
// directory on its way, would be created (write) — and how to fix it on the server. Found with
// Lstat calls on the same connection, which refuse exactly what the failed call was refused.
func (s *Store) explainPermission(c *conn, err error, p string, write bool) error {
	if c == nil || !errors.Is(err, fs.ErrPermission) || c.isDead() {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var culprit, need string
	var fi fs.FileInfo
	_ = c.run(ctx, min(c.stall, cleanupTimeout), func(*op) error {
		culprit, need = path.Dir(p), "look inside"
		if write {
			need = "create or remove files in"
		}
		var walked []string
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			walked = append([]string{d}, walked...)
		}
		for _, d := range append(walked, p) {
			_, err := c.sftp.Lstat(d)
			if errors.Is(err, fs.ErrPermission) {
				culprit, need = path.Dir(d), "look inside"
				break
			}
			if errors.Is(err, fs.ErrNotExist) {
				if write {
					culprit, need = path.Dir(d), "create or remove files in"
				}
				break
			}
		}
		fi, _ = c.sftp.Lstat(culprit)
		return nil
	})
	what := culprit
	if fi != nil {
		what += " (" + fi.Mode().String()
		if st, ok := fi.Sys().(*sftp.FileStat); ok {
			what += fmt.Sprintf(", owner uid %d, group gid %d", st.UID, st.GID)
		}
		what += ")"
	}
	fix := fmt.Sprintf("pgoffsite needs to enter, read and create files in every directory under %s (archives, manifests, retention markers): "+
		"on the server, as root, run `chown -R %s %s && chmod -R u+rwX %s`", s.o.Dir, s.o.User, s.o.Dir, s.o.Dir)
	if culprit != s.o.Dir && !strings.HasPrefix(culprit, s.o.Dir+"/") {
		fix = fmt.Sprintf("%s must be able to pass through %s to reach %s: on the server, as root, run `chmod o+x %s` (or give %s the directory)",
			s.o.User, culprit, s.o.Dir, culprit, s.o.User)
	}
	return fmt.Errorf("%w: the SFTP user %s may not %s %s; %s", err, s.o.User, need, what, fix)
}
