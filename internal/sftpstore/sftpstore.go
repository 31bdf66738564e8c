// Package sftpstore implements store.Store on a directory of an SFTP server (a VPS of one's
// own, a storage box): a copy of the archives outside the cloud the database runs in.
//
// An object is written to a temporary name beside its final one and renamed when complete and
// checked. SFTP's plain rename (SSH_FXP_RENAME) fails when the new name exists — OpenSSH links
// the new name and removes the old one — so an existing archive is never replaced. The server's
// host key is pinned by known_hosts lines: there is no trust on first use.
//
// No call waits forever: the connection is set up within DialTimeout, and an operation during
// which no byte moves for StallTimeout closes the connection and fails.
package sftpstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

var (
	_ store.Store  = (*Store)(nil)
	_ store.Reader = (*Store)(nil)
)

var errStoreClosed = errors.New("store closed")

// Defaults for Options.
const (
	DefaultDialTimeout  = 30 * time.Second
	DefaultStallTimeout = 30 * time.Second
)

// cancelGrace is how long a cancelled operation may take to notice on its own (the source
// reader stops) before its connection is cut, which loses the chance to clean up on it.
const cancelGrace = 2 * time.Second

// tempInfix is in the name of every temporary file Put writes: .<name>.tmp-<random>.
const tempInfix = ".tmp-"

// ErrHostKey reports that the server presented a host key other than the one pinned.
var ErrHostKey = errors.New("host key does not match the pinned key")

// Options say where the archives go and how to reach the server.
type Options struct {
	User string
	Host string
	Port int    // 0 means 22
	Dir  string // absolute directory on the server
	// PrivateKey is the client's private key, PEM or OpenSSH text, without a passphrase.
	PrivateKey string
	// KnownHosts holds known_hosts lines; the server must present a key pinned there.
	KnownHosts   string
	DialTimeout  time.Duration // connecting, authenticating and starting SFTP; 0 means 30s
	StallTimeout time.Duration // an operation with no byte moving this long fails; 0 means 30s
}

// Store writes objects as files under one directory of an SFTP server.
type Store struct {
	o      Options
	addr   string // host:port
	signer ssh.Signer
	pins   pins

	// cleanupWindow bounds the clean-up after a failed write, reconnections included.
	cleanupWindow time.Duration

	mu     sync.Mutex
	cur    *conn // nil until dialled, or after it was lost
	closed bool
}

// Dial checks o, connects and authenticates, so that a wrong host key or private key fails here,
// before anything is written. The returned Store reconnects on its own when the connection is
// lost between operations.
func Dial(ctx context.Context, o Options) (*Store, error) {
	s, err := newStore(o)
	if err != nil {
		return nil, err
	}
	c, err := s.dial(ctx, s.o.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	s.cur = c
	return s, nil
}

// Validate reports what is wrong with o — missing fields, a private key that cannot be read, no
// pinned host key for the server — without a network call, for checking configuration before
// any request. Dial checks the same first.
func (o Options) Validate() error {
	_, err := newStore(o)
	return err
}

// newStore checks o and prepares the key and the host key check, without a network call.
func newStore(o Options) (*Store, error) {
	if o.Port == 0 {
		o.Port = 22
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	var problems []string
	if o.User == "" {
		problems = append(problems, "no user (sftp://USER@host/dir)")
	}
	if o.Host == "" {
		problems = append(problems, "no host (sftp://user@HOST/dir)")
	}
	if o.Port < 1 || o.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is not between 1 and 65535", o.Port))
	}
	if !path.IsAbs(o.Dir) {
		problems = append(problems, fmt.Sprintf("directory %q is not absolute (sftp://user@host/ABSOLUTE/DIR)", o.Dir))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sftp: %s", strings.Join(problems, "; "))
	}
	o.Dir = path.Clean(o.Dir)
	s := &Store{o: o, addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), cleanupWindow: DefaultCleanupWindow}
	signer, err := parsePrivateKey(o.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("sftp: %s: %w", s.where(), err)
	}
	s.signer = signer
	s.pins, err = pinnedHostKeys(o.KnownHosts, s.addr, o.Host, o.Port)
	if err != nil {
		return nil, fmt.Errorf("sftp: %s: %w", s.where(), err)
	}
	return s, nil
}

// parsePrivateKey reads the key. Its errors never quote the key.
func parsePrivateKey(text string) (ssh.Signer, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("no private key: put the private key's text (PEM or OpenSSH, -----BEGIN ...) in the private key variable")
	}
	signer, err := ssh.ParsePrivateKey([]byte(text))
	if err == nil {
		return signer, nil
	}
	var pass *ssh.PassphraseMissingError
	if errors.As(err, &pass) {
		return nil, errors.New("the private key is protected by a passphrase, which a job cannot type: make a key without one (ssh-keygen -t ed25519 -N '') for this server only")
	}
	// x/crypto's messages name the problem ("no key found", an unsupported type), not the bytes.
	return nil, fmt.Errorf("the private key cannot be read (%s): it must be the whole text of a PEM or OpenSSH private key file, newlines included", err.Error())
}

func (s *Store) where() string { return s.o.User + "@" + s.addr }

// Location returns sftp://user@host[:port]/dir/key.
func (s *Store) Location(key string) string {
	host := s.o.Host
	if s.o.Port != 22 {
		host = s.addr
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "sftp://" + s.o.User + "@" + host + path.Join(s.o.Dir, key)
}

// remotePath is key's path on the server.
func (s *Store) remotePath(key string) string { return path.Join(s.o.Dir, key) }

// validKey reports whether key names a file inside the store.
func validKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.ContainsRune(key, 0) {
		return false
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

// Close ends the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	c := s.cur
	s.cur, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.close()
		<-c.dead
	}
	return nil
}

// conn returns the live connection, dialling one when there is none (or it was lost).
func (s *Store) conn(ctx context.Context) (c *conn, fresh bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, errStoreClosed
	}
	c = s.cur
	s.mu.Unlock()
	if c != nil && !c.isDead() {
		return c, false, nil
	}
	c, err = s.dial(ctx, s.o.DialTimeout)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.close()
		return nil, false, errStoreClosed
	}
	if s.cur != nil && s.cur != c && !s.cur.isDead() {
		// Another operation reconnected meanwhile: share its connection.
		c.close()
		return s.cur, false, nil
	}
	s.cur = c
	return c, true, nil
}

// forget drops c so that the next operation dials again.
func (s *Store) forget(c *conn) {
	c.close()
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
}

// do runs fn on the live connection. When fn fails because a connection kept from an earlier
// operation turns out to be lost (the server restarted, a NAT forgot it), fn runs once more on a
// new one; fn must then be safe to repeat. It returns the connection fn last ran on.
func (s *Store) do(ctx context.Context, fn func(*conn) error) (*conn, error) {
	for attempt := 0; ; attempt++ {
		c, fresh, err := s.conn(ctx)
		if err != nil {
			return nil, err
		}
		err = fn(c)
		if err == nil || !c.isDead() || fresh || attempt > 0 || ctx.Err() != nil {
			return c, err
		}
		s.forget(c)
	}
}

// Put writes r to a temporary file beside the final one — exactly obj.Size bytes, or for
// store.UnknownSize whatever r yields up to io.EOF — and renames it to the final name, which
// fails rather than replaces when that name exists. An object already there is found before
// the upload: r is then read to io.EOF without sending a byte, and Put returns ErrExists, as if
// the rename had failed (so the caller still knows the stream's size and hash).
func (s *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	loc := s.Location(obj.Key)
	if !validKey(obj.Key) {
		return fmt.Errorf("sftp: put %s: key %q is not a relative path inside the store", loc, obj.Key)
	}
	if obj.Size < 0 && obj.Size != store.UnknownSize {
		return fmt.Errorf("sftp: put %s: negative size %d", loc, obj.Size)
	}
	if err := s.put(ctx, obj, r); err != nil {
		return fmt.Errorf("sftp: put %s: %w", loc, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, obj store.Object, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	final := s.remotePath(obj.Key)
	dir := path.Dir(final)
	tmp := path.Join(dir, "."+path.Base(final)+tempInfix+randomHex(8))

	// Everything before the temporary file exists may be retried on a new connection: no byte
	// of r has been read yet.
	var exists bool
	c, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			if err := c.sftp.MkdirAll(dir); err != nil {
				return fmt.Errorf("create directory %s: %w", dir, err)
			}
			_, err := c.sftp.Lstat(final)
			switch {
			case err == nil:
				exists = true
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("look for %s: %w", final, err)
			}
			return nil
		})
	})
	if err != nil {
		return s.explain(c, err, final, true)
	}
	if exists {
		if _, err := io.Copy(io.Discard, store.ContextReader(ctx, r)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read source: %w", err)
		}
		return store.ErrExists
	}

	var u upload
	err = u.run(ctx, c, obj, r, tmp, final)
	if err != nil {
		err = s.explain(c, err, tmp, true)
	}
	if err == nil || !u.created {
		return err
	}
	return s.settle(ctx, err, tmp, final, u.n, u.renameSent)
}

// upload is what a Put's write of its temporary file left, for the clean-up after a failure.
type upload struct {
	created    bool  // the temporary file may exist
	renameSent bool  // the rename was sent and its answer lost: it may have been done
	n          int64 // the bytes written
}

// run writes the temporary file and renames it.
func (u *upload) run(ctx context.Context, c *conn, obj store.Object, r io.Reader, tmp, final string) error {
	var f *sftp.File
	err := c.run(ctx, c.stall, func(*op) error {
		u.created = true // from here on the file may exist, even if the answer never comes
		var err error
		f, err = c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		// An archive is every customer's data: only its owner may read it. A server that refuses
		// modes (some appliances) still gets the archive, with its own default.
		_ = f.Chmod(0o600)
		return nil
	})
	if err != nil {
		closeFile(c, f)
		return err
	}
	var n int64
	defer func() { u.n = n }()
	err = c.run(ctx, c.stall, func(o *op) error {
		src := io.Reader(store.ContextReader(ctx, r))
		if obj.Size != store.UnknownSize {
			// At most one byte more than announced, so a long reader is detected without reading it all.
			src = io.LimitReader(src, obj.Size+1)
		}
		var err error
		n, err = f.ReadFromWithConcurrency(&sourceReader{r: src, op: o}, 0)
		return err
	})
	if err != nil {
		closeFile(c, f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *sourceError
		if errors.As(err, &se) {
			return fmt.Errorf("read source: %w", se.err)
		}
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if obj.Size != store.UnknownSize && n != obj.Size {
		closeFile(c, f)
		if n > obj.Size {
			return fmt.Errorf("source yielded more than %d bytes: %w", obj.Size, store.ErrSizeMismatch)
		}
		return fmt.Errorf("source yielded %d bytes, want %d: %w", n, obj.Size, store.ErrSizeMismatch)
	}
	// fsync can take long on a big file with no byte moving: it gets a longer silence.
	err = c.run(ctx, 4*c.stall, func(*op) error {
		if c.fsync {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", tmp, err)
			}
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", tmp, err)
		}
		fi, err := c.sftp.Lstat(tmp)
		if err != nil {
			return fmt.Errorf("check %s: %w", tmp, err)
		}
		if fi.Size() != n {
			return fmt.Errorf("%s holds %d bytes after %d were sent", tmp, fi.Size(), n)
		}
		return nil
	})
	if err != nil {
		closeFile(c, f)
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The rename is the commit: once sent it is not cancelled, so a cancellation cannot leave a
	// published object behind an error. It is still bounded by the stall timeout.
	err = c.run(context.WithoutCancel(ctx), c.stall, func(*op) error {
		err := c.sftp.Rename(tmp, final)
		if err == nil {
			return nil
		}
		if _, serr := c.sftp.Lstat(final); serr == nil {
			return store.ErrExists
		}
		return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
	})
	switch {
	case err == nil:
		u.created = false
	case c.isDead() && !errors.Is(err, store.ErrExists):
		// The connection ended while the rename was on its way: the server may have done it.
		// The clean-up looks, on a new connection, before it removes anything.
		u.renameSent = true
	}
	return err
}

// closeFile closes f after a failure, within cleanupTimeout; its error adds nothing to the
// failure's.
func closeFile(c *conn, f *sftp.File) {
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = c.run(ctx, min(c.stall, cleanupTimeout), func(*op) error { return f.Close() })
}

// List describes the files under the store whose keys start with prefix, temporary files left
// out. It reads only the directories that can hold such keys: one app's listing never walks the
// others'. SFTP keeps no versions: an overwritten file leaves no trace but its modification time.
func (s *Store) List(ctx context.Context, prefix string) (store.Listing, error) {
	var objs []store.Info
	_, err := s.do(ctx, func(c *conn) error {
		objs = nil
		return c.run(ctx, c.stall, func(o *op) error {
			return walkPrefix(c.sftp, s.o.Dir, prefix, func(key string, fi fs.FileInfo) error {
				o.progress()
				if strings.HasPrefix(fi.Name(), ".") || !fi.Mode().IsRegular() {
					return nil
				}
				objs = append(objs, store.Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
				return nil
			})
		})
	})
	if err != nil {
		return store.Listing{}, fmt.Errorf("sftp: list %s: %w", s.Location(prefix), err)
	}
	store.SortInfos(objs)
	return store.Listing{Objects: objs}, nil
}

// walkPrefix calls fn for every file below root whose key (its path relative to root) starts
// with prefix, descending only into the directories that can hold such keys.
func walkPrefix(c *sftp.Client, root, prefix string, fn func(key string, fi fs.FileInfo) error) error {
	var visit func(dir, rel string) error
	visit = func(dir, rel string) error {
		entries, err := c.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("read directory %s: %w", dir, err)
		}
		for _, fi := range entries {
			key := fi.Name()
			if rel != "" {
				key = rel + "/" + key
			}
			if fi.IsDir() {
				if store.UnderPrefix(key, prefix) {
					if err := visit(path.Join(dir, fi.Name()), key); err != nil {
						return err
					}
				}
				continue
			}
			if strings.HasPrefix(key, prefix) {
				if err := fn(key, fi); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Start at the deepest directory the prefix names whole: shop/DATABASE/ is read from there.
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i > 0 && validKey(prefix[:i]) {
		start = prefix[:i]
	}
	return visit(path.Join(root, start), start)
}

// walk calls fn for every entry below dir (not dir itself), depth first. A missing dir has no
// entries.
func walk(c *sftp.Client, dir string, fn func(p string, fi fs.FileInfo) error) error {
	entries, err := c.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	for _, fi := range entries {
		p := path.Join(dir, fi.Name())
		if err := fn(p, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walk(c, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open opens the object at key for reading. Each read is bounded by the stall timeout.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	loc := s.Location(key)
	if !validKey(key) {
		return nil, 0, fmt.Errorf("sftp: open %s: key %q is not a relative path inside the store", loc, key)
	}
	var f *sftp.File
	var size int64
	c, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			var err error
			if f, err = c.sftp.Open(s.remotePath(key)); err != nil {
				return err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				f = nil
				return err
			}
			size = fi.Size()
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sftp: open %s: %w", loc, s.explain(c, err, s.remotePath(key), false))
	}
	return &reader{ctx: ctx, c: c, f: f, loc: loc}, size, nil
}

// reader reads a remote file, each Read under the stall watch.
type reader struct {
	ctx context.Context
	c   *conn
	f   *sftp.File
	loc string
}

func (r *reader) Read(p []byte) (int, error) {
	var n int
	var rerr error
	err := r.c.run(r.ctx, r.c.stall, func(*op) error {
		n, rerr = r.f.Read(p)
		if rerr == io.EOF {
			return nil
		}
		return rerr
	})
	if err != nil {
		return n, fmt.Errorf("sftp: read %s: %w", r.loc, err)
	}
	return n, rerr
}

func (r *reader) Close() error {
	return r.c.run(context.Background(), min(r.c.stall, cleanupTimeout), func(*op) error { return r.f.Close() })
}

// RemoveStale removes the temporary files that earlier runs left under the directory when they
// were killed mid-upload (SIGKILL, a lost machine) — those untouched for an hour — and returns
// their paths on the server.
func (s *Store) RemoveStale(ctx context.Context) ([]string, error) {
	return s.removeStale(ctx, time.Now().Add(-staleAfter))
}

func (s *Store) removeStale(ctx context.Context, before time.Time) ([]string, error) {
	var removed []string
	_, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(o *op) error {
			var errs []error
			err := walk(c.sftp, s.o.Dir, func(p string, fi fs.FileInfo) error {
				o.progress()
				if !fi.Mode().IsRegular() || !isTemp(fi.Name()) || !fi.ModTime().Before(before) {
					return nil
				}
				if err := c.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove %s: %w", p, s.explain(c, err, p, true)))
					return nil
				}
				removed = append(removed, p)
				return nil
			})
			return errors.Join(append(errs, err)...)
		})
	})
	if err != nil {
		return removed, fmt.Errorf("sftp: remove the temporary files interrupted runs left in %s: %w; remove what is left by hand (hidden files named .NAME.tmp-…)", s.Location(""), err)
	}
	return removed, nil
}

func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// sourceReader feeds the upload: time spent in the source's Read is not the network's, so the
// stall watch pauses for it; its errors are marked to tell them from the server's.
type sourceReader struct {
	r  io.Reader
	op *op
}

type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *sourceReader) Read(p []byte) (int, error) {
	s.op.pause()
	n, err := s.r.Read(p)
	s.op.resume()
	if err != nil && err != io.EOF {
		return n, &sourceError{err}
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// MarkerExists reports whether a file exists at key (a retention marker).
func (s *Store) MarkerExists(ctx context.Context, key string) (bool, error) {
	loc := s.Location(key)
	if !validKey(key) {
		return false, fmt.Errorf("sftp: look for %s: key %q is not a relative path inside the store", loc, key)
	}
	var found bool
	c, err := s.do(ctx, func(c *conn) error {
		return c.run(ctx, c.stall, func(*op) error {
			_, err := c.sftp.Stat(s.remotePath(key))
			switch {
			case err == nil:
				found = true
				return nil
			case errors.Is(err, fs.ErrNotExist):
				found = false
				return nil
			}
			return err
		})
	})
	if err != nil {
		return false, fmt.Errorf("sftp: look for %s: %w", loc, s.explain(c, err, s.remotePath(key), false))
	}
	return found, nil
}

// Caps are what an SFTP account can do besides Put; Close ends the connection.
func (s *Store) Caps() store.Caps {
	return store.Caps{Reader: s, Markers: s, Records: s, Stale: s, Remove: s, Close: s.Close}
}
