package pgdump

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// Checker is Check as an io.Writer, for checking an archive while it streams somewhere else
// (io.TeeReader, io.MultiWriter). The check runs on its own goroutine behind a bounded queue
// (queueBufs × queueBufSize bytes), so a Write waits only when the check falls that far behind.
// How long Writes have waited in all is how far the check has held the transfer back; with
// Options.KeepUp that, not how full a queue is, decides when a table is cut (see pace).
//
// Once the check has failed, Write returns its error, which stops an io.TeeReader or
// io.MultiWriter; a caller that wants the stream to go on regardless must drop the error itself.
// Write and Close must not be called concurrently. Close must be called, or the goroutine stays.
type Checker struct {
	full      chan []byte // filled buffers, in order
	free      chan []byte // buffers the check has finished with
	allocated int
	cur       []byte // the buffer being filled by Write
	done      chan struct{}
	closed    bool
	pace      pace
	sum       Summary
	err       error
}

const (
	queueBufs    = 8
	queueBufSize = 256 << 10
)

// NewChecker starts a check that reads what is written to it.
func NewChecker(o Options) *Checker {
	c := &Checker{
		full: make(chan []byte, queueBufs),
		free: make(chan []byte, queueBufs),
		done: make(chan struct{}),
		pace: pace{start: time.Now(), allow: o.Allowance},
	}
	if c.pace.allow == nil {
		c.pace.allow = DefaultAllowance
	}
	if o.KeepUp && o.behind == nil {
		o.behind = c.pace.behind
	}
	go func() {
		defer close(c.done)
		c.sum, c.err = CheckWith(&queueReader{c: c}, o)
	}()
	return c
}

// Held is how long Writes have waited for the check so far: how far it has held the transfer back.
func (c *Checker) Held() time.Duration { return c.pace.held(time.Now()) }

// pace measures the time the writer spends waiting for the check. A check that keeps up cuts
// only when that time exceeds its allowance and the writer is waiting right now: a burst of
// input that the workers absorb in a moment costs a short wait and nothing else, while a check
// that would end well after the transfer is cut back to what the transfer's pace allows.
type pace struct {
	start  time.Time
	allow  func(elapsed time.Duration) time.Duration
	waited atomic.Int64 // nanoseconds of the waits that have ended
	since  atomic.Int64 // UnixNano when the current wait began; 0 while the writer is not waiting
}

func (p *pace) wait()  { p.since.Store(time.Now().UnixNano()) }
func (p *pace) ended() { p.waited.Add(time.Now().UnixNano() - p.since.Swap(0)) }

func (p *pace) held(now time.Time) time.Duration {
	d := p.waited.Load()
	if s := p.since.Load(); s != 0 {
		d += now.UnixNano() - s
	}
	return time.Duration(d)
}

func (p *pace) behind() bool {
	if p.since.Load() == 0 {
		return false // nothing waits for the check: decompressing costs the transfer nothing
	}
	now := time.Now()
	return p.held(now) > p.allow(now.Sub(p.start))
}

var errCheckerClosed = errors.New("pgdump: write to a closed Checker")

// Write queues p for the check. It fails only once the check has failed (with its error).
func (c *Checker) Write(p []byte) (int, error) {
	if c.closed {
		return 0, errCheckerClosed
	}
	n := 0
	for len(p) > 0 {
		if c.cur == nil {
			b, err := c.buffer()
			if err != nil {
				return n, err
			}
			c.cur = b[:0]
		}
		k := copy(c.cur[len(c.cur):cap(c.cur)], p)
		c.cur = c.cur[:len(c.cur)+k]
		n += k
		p = p[k:]
		if len(c.cur) == cap(c.cur) {
			if err := c.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// buffer returns an empty buffer: a recycled one, a new one while fewer than queueBufs exist, or
// the next one the check gives back.
func (c *Checker) buffer() ([]byte, error) {
	select {
	case b := <-c.free:
		return b, nil
	case <-c.done:
		return nil, c.failure()
	default:
	}
	if c.allocated < queueBufs {
		c.allocated++
		return make([]byte, queueBufSize), nil
	}
	c.pace.wait()
	defer c.pace.ended()
	select {
	case b := <-c.free:
		return b, nil
	case <-c.done:
		return nil, c.failure()
	}
}

// flush hands the current buffer to the check. full has room for every buffer there is, so this
// never waits.
func (c *Checker) flush() error {
	if len(c.cur) == 0 {
		return nil
	}
	select {
	case <-c.done:
		return c.failure()
	default:
	}
	c.full <- c.cur
	c.cur = nil
	return nil
}

func (c *Checker) failure() error {
	if c.err != nil {
		return c.err
	}
	return errors.New("pgdump: the check ended before the archive did")
}

// Close marks the end of the archive, waits for the check and returns its result.
func (c *Checker) Close() (Summary, error) {
	if !c.closed {
		c.closed = true
		_ = c.flush()
		close(c.full)
	}
	<-c.done
	return c.sum, c.err
}

// queueReader is the check's side of the queue.
type queueReader struct {
	c   *Checker
	cur []byte
	off int
}

func (q *queueReader) Read(p []byte) (int, error) {
	for q.off == len(q.cur) {
		if q.cur != nil {
			q.c.free <- q.cur[:cap(q.cur)] // free has room for every buffer there is
			q.cur = nil
		}
		b, ok := <-q.c.full
		if !ok {
			return 0, io.EOF
		}
		q.cur, q.off = b, 0
	}
	k := copy(p, q.cur[q.off:])
	q.off += k
	return k, nil
}
