// Package filestore implements store.Store on a local directory: the demo, tests and mounted
// volumes use it.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

var (
	_ store.Store  = (*Store)(nil)
	_ store.Reader = (*Store)(nil)
)

// Store writes objects as files under one directory.
type Store struct {
	dir string
}

// ErrNoDirectory: the store's directory does not exist.
var ErrNoDirectory = errors.New("the directory does not exist")

// New returns a Store rooted at dir, which must be absolute and exist. A missing directory is
// an error, never created here: it most often means a volume that is not mounted, and archives
// written into the mount point would land on the disk beneath it.
func New(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("filestore: directory %q is not absolute", dir)
	}
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("filestore: %s: %w: create it (mkdir -p %s) on the volume the archives are to be kept on, or correct ARCHIVE_URL", dir, ErrNoDirectory, dir)
	case err != nil:
		return nil, fmt.Errorf("filestore: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("filestore: %s is not a directory: correct ARCHIVE_URL to name a directory (file:///absolute/dir)", dir)
	}
	return &Store{dir: dir}, nil
}

// Location returns the absolute path of key.
func (s *Store) Location(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key))
}

// Put writes r to a temporary file beside the final one — exactly obj.Size bytes, or for
// store.UnknownSize whatever r yields up to io.EOF — and publishes it with a hard link, which
// fails rather than replaces when the name exists: a concurrent or earlier Put of the same key
// wins and this one returns ErrExists.
func (s *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	final := s.Location(obj.Key)
	if !filepath.IsLocal(filepath.FromSlash(obj.Key)) {
		return fmt.Errorf("filestore: put %s: key %q is not a relative path inside the store", final, obj.Key)
	}
	if obj.Size < 0 && obj.Size != store.UnknownSize {
		return fmt.Errorf("filestore: put %s: negative size %d", final, obj.Size)
	}
	if err := s.put(ctx, obj, r, final); err != nil {
		return fmt.Errorf("filestore: put %s: %w", final, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, obj store.Object, r io.Reader, final string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// CreateTemp opens with 0600. The dot prefix keeps the file out of casual listings.
	f, err := os.CreateTemp(dir, "."+filepath.Base(final)+tempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("%w; %s", err, leftBehind(tmp, rerr))
			}
		}
		f.Close() // after the removal: the lock guards the file until it is gone
	}()
	// The lock tells RemoveStale in another run that this file is in use; the kernel drops it
	// when the process dies, however it dies, so a SIGKILL leaves an unlocked, removable file.
	// A filesystem without locks fails RemoveStale's attempt too, which then keeps the file:
	// the upload goes on unlocked rather than failing.
	_ = lock(f)

	src := io.Reader(store.ContextReader(ctx, r))
	if obj.Size != store.UnknownSize {
		// At most one byte more than announced, so a long reader is detected without reading it all.
		src = io.LimitReader(src, obj.Size+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read source: %w", err)
	}
	if obj.Size != store.UnknownSize && n != obj.Size {
		if n > obj.Size {
			return fmt.Errorf("source yielded more than %d bytes: %w", obj.Size, store.ErrSizeMismatch)
		}
		return fmt.Errorf("source yielded %d bytes, want %d: %w", n, obj.Size, store.ErrSizeMismatch)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return store.ErrExists
		}
		return err
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	tmp = ""
	// The link and the removal are directory entries: sync them so the object survives a crash.
	if err := syncDir(dir); err != nil {
		return err
	}
	return f.Close()
}

// tempInfix is in the name of every temporary file Put writes: .<name>.tmp-<random>.
const tempInfix = ".tmp-"

// staleAfter is how long a temporary file must have gone unmodified before RemoveStale may take
// it. The lock is what proves a file abandoned; the age only covers the instant between
// creating a file and locking it.
const staleAfter = time.Minute

// staleAfterWords is staleAfter as messages say it.
const staleAfterWords = "a minute"

// leftBehind says that tmp, which could not be removed (why), stays, and what removes it: the
// backup runs' RemoveStale, which meets the same refusal until someone lifts it.
func leftBehind(tmp string, why error) string {
	return fmt.Sprintf("the temporary file %s is left, because removing it failed (%v): remove it by hand "+
		"(runs of `pgoffsite backup` try again once no run writes it and it has gone %s without a write)", tmp, why, staleAfterWords)
}

// RemoveStale removes the temporary files that earlier runs left under dir when they were
// killed mid-upload (SIGKILL, a crash, a lost machine), and returns their paths. A file another
// process is still writing holds a lock and is left alone, however long it has been idle.
func RemoveStale(dir string) ([]string, error) {
	return removeStale(dir, staleAfter)
}

// RemoveStale removes the temporary files killed runs left in the store's directory, as the
// function RemoveStale does.
func (s *Store) RemoveStale(ctx context.Context) ([]string, error) {
	return RemoveStale(s.dir)
}

func removeStale(dir string, minAge time.Duration) ([]string, error) {
	var removed []string
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			errs = append(errs, err) // an unreadable subdirectory does not hide the others
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || !isTemp(d.Name()) {
			return nil
		}
		gone, err := removeIfStale(p, minAge)
		if err != nil {
			errs = append(errs, err)
		} else if gone {
			removed = append(removed, p)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("filestore: remove the temporary files interrupted runs left in %s: %w; remove what is left by hand (hidden files named .NAME.tmp-…)", dir, errors.Join(errs...))
	}
	return removed, nil
}

func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// removeIfStale removes p when no process holds its lock and it is older than minAge. The lock
// is taken first and held during the removal, so a writer cannot be between its check and ours.
func removeIfStale(p string, minAge time.Duration) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // its writer finished meanwhile
		}
		return false, err
	}
	defer f.Close()
	if err := lock(f); err != nil {
		if errors.Is(err, errLocked) {
			return false, nil // in use by a running Put
		}
		return false, fmt.Errorf("lock %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if time.Since(fi.ModTime()) < minAge {
		return false, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// List describes the files under the store whose keys start with prefix (for verification and
// status), walking only the directories that can hold such keys. A directory keeps no versions:
// an overwritten file leaves no trace but its modification time.
func (s *Store) List(ctx context.Context, prefix string) (store.Listing, error) {
	var l store.Listing
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p != s.dir && !store.UnderPrefix(key, prefix) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since the directory was read
		}
		if err != nil {
			return err
		}
		l.Objects = append(l.Objects, store.Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return store.Listing{}, fmt.Errorf("filestore: list %s: %w", s.Location(prefix), err)
	}
	store.SortInfos(l.Objects)
	return l, nil
}

// Open opens the object at key for reading.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	f, err := os.Open(s.Location(key))
	if err != nil {
		return nil, 0, fmt.Errorf("filestore: open %s: %w", s.Location(key), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("filestore: open %s: %w", s.Location(key), err)
	}
	return f, fi.Size(), nil
}

// MarkerExists reports whether a file exists at key (a retention marker).
func (s *Store) MarkerExists(_ context.Context, key string) (bool, error) {
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return false, fmt.Errorf("filestore: look for %s: key %q is not a relative path inside the store", s.Location(key), key)
	}
	_, err := os.Stat(s.Location(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("filestore: look for %s: %w", s.Location(key), err)
}

// Caps are what a directory can do besides Put: everything but abort uploads, which it has none of.
func (s *Store) Caps() store.Caps {
	return store.Caps{Reader: s, Markers: s, Records: s, Stale: s, Remove: s}
}
