package sftpstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/pkg/sftp"
)

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
	where := fmt.Sprintf("the filesystem holding %s has %s free of %s", dir, iec(avail), iec(total))
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

// iec says a byte count in binary units, as df -h does.
func iec(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
