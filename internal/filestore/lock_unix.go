//go:build unix

package filestore

import (
	"errors"
	"os"
	"syscall"
)

// errLocked is lock's error when another open file holds the lock.
var errLocked = errors.New("locked by another process")

// lock takes an exclusive flock on f without waiting. flock belongs to the open file, so it
// conflicts with any other open of the same file, in this process or another, and the kernel
// releases it when the file is closed or its process dies.
func lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return err
		}
	}
}
