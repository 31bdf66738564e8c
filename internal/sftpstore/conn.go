package sftpstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// conn is one SSH connection with its SFTP session, and the watch that closes it when an
// operation waits on the server while no byte moves. pkg/sftp takes no context and sets no
// deadline, so closing the connection is what ends a stuck call.
type conn struct {
	addr  string
	nc    net.Conn
	ssh   *ssh.Client
	sftp  *sftp.Client
	fsync bool // the server offers fsync@openssh.com
	stall time.Duration

	last      *atomic.Int64 // UnixNano of the last byte read or written
	dead      chan struct{} // closed when the SSH connection has ended
	closing   atomic.Bool   // close was called: dead follows
	closeOnce sync.Once

	mu      sync.Mutex
	ops     map[*op]struct{}
	stalled error
}

// maxConcurrentWrites is how many 32 KiB writes an upload keeps in flight: enough to fill a
// long fat link, as scp's pipelining does.
const maxConcurrentWrites = 64

// dial connects, checks the host key, authenticates and starts SFTP, all within timeout.
func (s *Store) dial(ctx context.Context, timeout time.Duration) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(what string, err error) error {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (ctx.Err() == context.DeadlineExceeded) {
			return fmt.Errorf("%s %s: no answer within %s: %w", what, s.where(), timeout, context.DeadlineExceeded)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", what, s.where(), ctx.Err())
		}
		return fmt.Errorf("%s %s: %w", what, s.where(), err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fail("connect to", err)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	last := new(atomic.Int64)
	cc := &countingConn{Conn: nc, last: last}

	entry := knownhosts.Normalize(s.addr)
	var hostErr error
	cfg := &ssh.ClientConfig{
		User: s.o.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := s.pins.check(hostname, remote, key); err != nil {
				hostErr = hostKeyError(entry, key, err)
				return hostErr
			}
			return nil
		},
		HostKeyAlgorithms: s.pins.algos,
		Timeout:           timeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(cc, s.addr, cfg)
	if err != nil {
		stop()
		nc.Close()
		var neg *ssh.AlgorithmNegotiationError
		switch {
		case hostErr != nil:
			return nil, hostErr
		case errors.As(err, &neg) && neg.What == "host key":
			// The server has no key of a pinned type: say what it has instead.
			return nil, s.unpinnedTypes(ctx, entry, neg.RequestedAlgorithms)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("log in to %s: the server refused the private key: is its public key in the authorized_keys of %s on the server? (%v)", s.where(), s.o.User, err)
		}
		return nil, fail("SSH handshake with", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(maxConcurrentWrites))
	if err != nil {
		stop()
		client.Close()
		return nil, fail("start SFTP on", err)
	}
	if !stop() {
		// The deadline or a cancellation closed the connection as SFTP started.
		sc2.Close()
		client.Close()
		return nil, fail("start SFTP on", ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	c := &conn{addr: s.addr, nc: nc, ssh: client, sftp: sc2, stall: s.o.StallTimeout, last: last,
		dead: make(chan struct{}), ops: map[*op]struct{}{}}
	data, ok := sc2.HasExtension("fsync@openssh.com")
	c.fsync = ok && data == "1"
	go func() {
		client.Wait()
		close(c.dead)
	}()
	go func() {
		// The SFTP session can end while SSH lives on (the server's sftp process died): the
		// connection is of no use then.
		sc2.Wait()
		c.close()
	}()
	go c.watch()
	return c, nil
}

// close cuts the connection. The socket goes first: closing the SSH layer sends messages, which
// would wait forever on a server that stopped reading.
func (c *conn) close() {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		c.nc.Close()
		c.sftp.Close()
		c.ssh.Close()
	})
}

func (c *conn) isDead() bool {
	if c.closing.Load() {
		return true
	}
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// op is one operation waiting on the server. Silence counts from since, or from the last byte
// moved, whichever is later, except while the operation waits on its own source (paused).
type op struct {
	quiet  time.Duration
	since  atomic.Int64
	paused atomic.Int32
}

func (o *op) progress() { o.since.Store(time.Now().UnixNano()) }
func (o *op) pause()    { o.paused.Add(1) }
func (o *op) resume()   { o.progress(); o.paused.Add(-1) }

// run calls fn under the stall watch: when no byte moves for quiet while fn waits on the
// server, the connection is closed, which makes fn return. A cancelled ctx gives fn
// cancelGrace to stop on its own (the source stops yielding) before the connection is cut.
func (c *conn) run(ctx context.Context, quiet time.Duration, fn func(*op) error) error {
	if c.isDead() {
		return c.lost(errors.New("connection closed"))
	}
	o := &op{quiet: quiet}
	o.progress()
	c.mu.Lock()
	c.ops[o] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.ops, o)
		c.mu.Unlock()
	}()
	done := make(chan error, 1)
	go func() { done <- fn(o) }()
	select {
	case err := <-done:
		if err != nil && (c.isDead() || broken(err)) {
			c.close()
			return c.lost(err)
		}
		return err
	case <-ctx.Done():
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			c.close()
			<-done
		}
		return ctx.Err()
	case <-c.dead:
		if err := <-done; err != nil {
			return c.lost(err)
		}
		return nil
	}
}

// broken reports whether err says the connection failed, rather than the server answering
// with an error or the source failing. The SFTP layer can see the end of the connection before
// SSH does, and says so in several ways.
func broken(err error) bool {
	var src *sourceError
	var status *sftp.StatusError
	if errors.As(err, &src) || errors.As(err, &status) {
		return false
	}
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// lost explains an operation that failed because the connection ended.
func (c *conn) lost(err error) error {
	c.mu.Lock()
	stalled := c.stalled
	c.mu.Unlock()
	if stalled != nil {
		return stalled
	}
	return fmt.Errorf("connection to %s lost: %w", c.addr, err)
}

// ErrStalled reports that the server stopped answering while an operation waited on it.
var ErrStalled = errors.New("server stopped answering")

// watch closes the connection when an operation has waited on the server with no byte moving
// for longer than it tolerates.
func (c *conn) watch() {
	tick := time.NewTicker(max(c.stall/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-tick.C:
		}
		now := time.Now()
		last := c.last.Load()
		c.mu.Lock()
		var quiet time.Duration
		for o := range c.ops {
			if o.paused.Load() > 0 {
				continue
			}
			since := max(o.since.Load(), last)
			if now.Sub(time.Unix(0, since)) > o.quiet {
				quiet = o.quiet
				break
			}
		}
		if quiet > 0 && c.stalled == nil {
			c.stalled = fmt.Errorf("no byte moved to or from %s for %s while an operation waited on it; the connection was closed: %w", c.addr, quiet, ErrStalled)
		}
		c.mu.Unlock()
		if quiet > 0 {
			c.close()
			return
		}
	}
}

// countingConn records when bytes last moved.
type countingConn struct {
	net.Conn
	last *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}
