package sftpstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
)

// DefaultCleanupWindow bounds the clean-up after a failed upload, reconnections included: long
// enough for a link that was reset, or a server restarting, to come back; short enough that the
// run, which waits for every copy, is not held long by a destination that is gone.
const DefaultCleanupWindow = time.Minute

// cleanupTimeout bounds a clean-up once the operation's context is cancelled: a SIGTERM leaves
// the process 30 s before SIGKILL, and the other destinations' manifests and the notification
// need that time too.
const cleanupTimeout = 5 * time.Second

// The waits between clean-up attempts: the first retry comes at once after a connection is
// refused or lost, the later ones spread out.
const (
	cleanupRetryBase = 500 * time.Millisecond
	cleanupRetryMax  = 5 * time.Second
)

// staleAfter is how long a temporary file must have gone unmodified before RemoveStale takes
// it. SFTP has no locks, so age is the only sign that its writer is gone; a running upload
// touches its file with every write.
const staleAfter = time.Hour

// cleanupContext is what a clean-up after ctx's operation failed runs under: at most
// s.cleanupWindow, and at most cleanupTimeout once ctx is cancelled.
func (s *Store) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	window := s.cleanupWindow
	if ctx.Err() != nil {
		window = min(window, cleanupTimeout)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), window)
	// A cancellation during the clean-up (a SIGTERM while reconnecting) shortens what is left;
	// the timer's cancel of a clean-up already over does nothing.
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(cleanupTimeout, cancel) })
	return cctx, func() {
		stop()
		cancel()
	}
}

// retry runs fn on a live connection until it succeeds, the server answers it with an error
// (trying again would change nothing), or ctx ends. A connection that is lost, or cannot be
// made, is tried again after a backoff: the link that broke the upload is often down for a few
// seconds. It returns fn's last error, or the last connection's.
func (s *Store) retry(ctx context.Context, fn func(c *conn) error) error {
	var last error
	for attempt := 0; ; attempt++ {
		c, _, err := s.conn(ctx)
		if err == nil {
			err = c.run(ctx, min(c.stall, cleanupTimeout), func(*op) error { return fn(c) })
			if err == nil || (!c.isDead() && ctx.Err() == nil) {
				return err
			}
			s.forget(c)
		}
		if last == nil || ctx.Err() == nil {
			last = err // a failure of the connection, not the window's end, says why
		}
		if errors.Is(err, errStoreClosed) || errors.Is(err, ErrHostKey) {
			return err
		}
		if backoff.Sleep(ctx, backoff.Delay(cleanupRetryBase, cleanupRetryMax, attempt)) != nil {
			return last
		}
	}
}

// removeFile removes p; one already gone is fine.
func removeFile(c *conn, p string) error {
	if err := c.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// published reports whether tmp was renamed to final: tmp is gone and final holds size bytes.
// Only the Put that chose tmp knows its name, so nothing else can have removed it.
func published(c *conn, tmp, final string, size int64) (bool, error) {
	_, err := c.sftp.Lstat(tmp)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	fi, err := c.sftp.Lstat(final)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return fi.Mode().IsRegular() && fi.Size() == size, nil
}

// settle finishes a failed write of tmp after ctx's operation failed with err: it removes tmp,
// reconnecting within the clean-up window, or says by name that it is left and when a later run
// takes it. When the rename may have been done (renameSent: its answer was lost with the
// connection) and final holds the size bytes written, the write succeeded and settle returns nil.
func (s *Store) settle(ctx context.Context, err error, tmp, final string, size int64, renameSent bool) error {
	cctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	start := time.Now()
	done, refused := false, false
	cerr := s.retry(cctx, func(c *conn) error {
		if renameSent {
			ok, err := published(c, tmp, final, size)
			if err != nil {
				return err
			}
			if ok {
				done = true
				return nil
			}
		}
		err := removeFile(c, tmp)
		// An answer, not a lost connection: trying again would change nothing.
		refused = err != nil && !c.isDead() && !broken(err)
		if refused {
			return s.explain(c, err, tmp, true)
		}
		return err
	})
	switch {
	case done:
		return nil
	case cerr == nil:
		return err
	}
	return fmt.Errorf("%w; %s", err, s.leftBehind(tmp, time.Since(start), cerr, refused))
}

// leftBehind says that tmp stays on the server, why, and what removes it: the backup runs'
// RemoveStale, once the file has gone staleAfter without a write — since the failure, as this
// run no longer writes it.
func (s *Store) leftBehind(tmp string, tried time.Duration, why error, refused bool) string {
	if refused {
		return fmt.Sprintf("the temporary file %s is left on the server of %s: the server refused its removal (%v); "+
			"remove it by hand (runs of `pgoffsite backup` try again once it has gone %s without a write)",
			tmp, s.Location(""), why, words(staleAfter))
	}
	return fmt.Sprintf("the temporary file %s is left on the server of %s (no connection to remove it, tried for %s: %v): "+
		"the first run of `pgoffsite backup` that starts %s or more from now removes it (a temporary file that long without a write is taken for abandoned), "+
		"or remove it by hand to free its space sooner",
		tmp, s.Location(""), roughly(tried), why, words(staleAfter))
}

// words says a whole number of hours, minutes or seconds as people do: "an hour", "5 minutes".
func words(d time.Duration) string {
	for _, u := range []struct {
		unit       time.Duration
		one, other string
	}{{time.Hour, "an hour", "hours"}, {time.Minute, "a minute", "minutes"}, {time.Second, "a second", "seconds"}} {
		if d >= u.unit && d%u.unit == 0 {
			if d == u.unit {
				return u.one
			}
			return fmt.Sprintf("%d %s", d/u.unit, u.other)
		}
	}
	return d.String()
}

// roughly says how long something took, to the second (at least "a second").
func roughly(d time.Duration) string {
	return words(max(d.Round(time.Second), time.Second))
}
