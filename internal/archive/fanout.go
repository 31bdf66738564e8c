package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Destination is one place every archive is written to.
type Destination struct {
	Name  string // as ARCHIVE_URL names it, e.g. s3://bucket/prefix; never a secret
	Store store.Store
	// Markers, when set, is how the destination tells which retention periods already have an
	// archive (RETENTION): markers are looked up there and written there after each archive.
	Markers retention.Markers
	// Remove, when set, deletes an object there: the job takes back a dump whose manifest it
	// could not write. Nil where the credentials may not delete (an S3 uploader's, by design).
	Remove store.Remover
}

// Copy is what happened to one archive at one destination.
type Copy struct {
	Destination     string
	Location        string
	AlreadyArchived bool // an earlier run archived this very backup there
	Err             error
}

// fanoutChunk is how much of the stream is handed to every destination at a time: big enough
// that a chunk costs little bookkeeping, small next to a destination's own part buffers, which
// are the memory that counts.
const fanoutChunk = 256 << 10

// errDetached tells the tee that a destination stopped reading: its Put returned.
var errDetached = errors.New("destination stopped reading")

const (
	// detachAfter is how long a destination may take no bytes of the archive while they wait
	// for it before it is detached: the silence limit of a request's bytes (stall.DefaultIdle)
	// three times over, a store's own limit and two retries. A store that watches its requests
	// and retries them (S3, SFTP) gives up within that on its own; one that cannot (a directory
	// on a disk that hangs) gets the same bound here. Bytes its requests move count as taking
	// bytes (stall.WithActivity), so a slow link that moves is never cut.
	detachAfter = 3 * stall.DefaultIdle
	// stopGrace is how long a destination's Put may take to return once it was told to stop
	// (detached, or the run interrupted): an S3 upload's abort takes up to 10 s.
	stopGrace = 12 * time.Second
)

// StalledError is a destination detached from the fan-out: it took no bytes of the archive for
// Quiet while they waited for it.
type StalledError struct {
	Quiet time.Duration
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("stalled: the destination took no bytes of the archive for %s and was detached", e.Quiet)
}

// stalled reports whether err says a destination stopped answering: detached by the fan-out,
// or a request of its own given up after its silence limit.
func stalled(err error) bool {
	var se *StalledError
	var re *stall.Error
	return errors.As(err, &se) || errors.As(err, &re)
}

// lane is one destination's share of a fan-out: the pipe it reads the stream from, its Put,
// and what the watch on it needs.
type lane struct {
	dest    Destination
	pr      *io.PipeReader
	pw      *io.PipeWriter
	ctx     context.Context
	cancel  context.CancelCauseFunc
	done    chan error   // the Put's result
	moved   atomic.Int64 // when it last took bytes or was offered some, in Unix nanoseconds
	owing   atomic.Bool  // the tee waits for it to take a chunk
	stalled atomic.Pointer[StalledError]
}

func (l *lane) progress() { l.moved.Store(time.Now().UnixNano()) }

// Read is the destination's end of the pipe: each byte it takes is progress.
func (l *lane) Read(p []byte) (int, error) {
	n, err := l.pr.Read(p)
	if n > 0 {
		l.progress()
	}
	return n, err
}

// detach gives up on a destination that stopped taking bytes: its Put is cancelled and its
// pipe closed, so that the tee goes on without it.
func (l *lane) detach(quiet time.Duration) {
	se := &StalledError{Quiet: quiet}
	if !l.stalled.CompareAndSwap(nil, se) {
		return
	}
	l.cancel(se)
	l.pr.CloseWithError(se)
}

// wait returns the Put's result, or gives up on it when it does not return within grace of
// being told to stop: a store that ignores its cancelled context must not hold the run.
func (l *lane) wait(grace time.Duration) error {
	var err error
	select {
	case err = <-l.done:
	case <-l.ctx.Done():
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case err = <-l.done:
		case <-t.C:
			err = fmt.Errorf("did not stop within %s of being told to (what it was writing may stay there)", grace)
		}
	}
	if se := l.stalled.Load(); se != nil && err != nil && !errors.Is(err, se) {
		return fmt.Errorf("%w (%w)", se, err) // the store's own words: whether its upload was aborted
	}
	return err
}

// putAll reads r once and writes it to every destination at the same time, with back-pressure
// from the slowest. A destination that fails is detached (its Put returns its error) while the
// others go on, and so is one that takes no bytes for detachAfter; an error from r reaches
// every destination still reading, so that none of them makes the object visible. It returns
// one error per destination (nil: stored).
func (j *Job) putAll(ctx context.Context, obj store.Object, r io.Reader) []error {
	lanes := make([]*lane, len(j.Destinations))
	for i, d := range j.Destinations {
		l := &lane{dest: d, done: make(chan error, 1)}
		l.pr, l.pw = io.Pipe()
		l.ctx, l.cancel = context.WithCancelCause(ctx)
		l.progress()
		lanes[i] = l
		go func() {
			err := d.Store.Put(stall.WithActivity(l.ctx, l.progress), obj, l)
			// Whatever the destination did not read stays unread: the tee must not wait for it.
			l.pr.CloseWithError(errDetached)
			l.done <- err
		}()
	}
	stop := watchLanes(lanes, j.detachLimit())
	tee(r, lanes)
	stop()
	errs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for i, l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.wait(j.stopLimit())
			l.cancel(nil)
		}()
	}
	wg.Wait()
	return errs
}

// watchLanes detaches every destination that the tee has been waiting on for limit without
// it taking a byte, until stop is called.
func watchLanes(lanes []*lane, limit time.Duration) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(max(limit/20, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now().UnixNano()
			for _, l := range lanes {
				// owing is read first: the tee marks a chunk's offer as progress before it sets it.
				if l.owing.Load() && time.Duration(now-l.moved.Load()) >= limit {
					l.detach(limit)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// tee copies r to every lane until r ends or no lane is left, and closes each writer: with
// nil after a clean end, with r's error otherwise.
func tee(r io.Reader, lanes []*lane) {
	alive := make([]bool, len(lanes))
	for i := range alive {
		alive[i] = true
	}
	left := len(lanes)
	buf := make([]byte, fanoutChunk)
	werrs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for left > 0 {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			// Every destination gets the chunk at the same time; the next chunk waits for the
			// slowest, which is what bounds memory.
			for i, l := range lanes {
				if !alive[i] {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Silence counts from the offer: a destination waiting for the source owes nothing.
					l.progress()
					l.owing.Store(true)
					_, werrs[i] = l.pw.Write(buf[:n])
					l.owing.Store(false)
				}()
			}
			wg.Wait()
			for i := range lanes {
				if alive[i] && werrs[i] != nil {
					alive[i] = false
					left--
				}
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			for i, l := range lanes {
				if alive[i] {
					l.pw.Close()
				}
			}
			return
		case err != nil:
			for _, l := range lanes {
				l.pw.CloseWithError(err)
			}
			return
		}
	}
}

// delivery is the tee stage's outcome: each destination's copy of one object.
type delivery struct {
	copies   []Copy
	existing int    // destinations that held the object already
	stream   *meter // what the destinations were sent
}

// send is the tee stage: it writes what m yields to every destination at once (putAll) and
// says how each copy went.
func (j *Job) send(ctx context.Context, log zerolog.Logger, obj store.Object, m *meter) delivery {
	errs := j.putAll(ctx, obj, m)
	d := delivery{stream: m}
	d.copies, d.existing = copies(log, j.Destinations, obj.Key, errs, m.err)
	return d
}

// everywhere tells that every destination held the object already: an earlier run stored it.
func (d delivery) everywhere() bool { return d.existing == len(d.copies) }

// failed is the error when the stream itself failed (the source, or a check) and no
// destination held the object: said once for all of them.
func (d delivery) failed(where string) error {
	if d.stream.err != nil && d.existing == 0 {
		return fmt.Errorf("archive: upload %s: %w", where, d.stream.err)
	}
	return nil
}

// copies is each destination's outcome of one Put of key: errs are the stores' answers, and
// streamErr the stream's own failure (the source, or the check), which every store then
// refused for the same reason, to be said once by the caller. existing counts the destinations
// that already held the object.
func copies(log zerolog.Logger, dests []Destination, key string, errs []error, streamErr error) (out []Copy, existing int) {
	out = make([]Copy, len(dests))
	for i, d := range dests {
		c := Copy{Destination: d.Name, Location: d.Store.Location(key)}
		switch {
		case errors.Is(errs[i], store.ErrExists):
			c.AlreadyArchived = true
			existing++
		case streamErr != nil:
			c.Err = streamErr
		case errs[i] != nil:
			c.Err = fmt.Errorf("upload: %w", errs[i])
			switch {
			case stalled(errs[i]):
				msg := "the destination stopped answering: its copy was given up"
				if len(dests) > 1 {
					msg += " (the other destinations go on)"
				}
				log.Warn().Str("destination", d.Name).Err(errs[i]).
					Str("hint", "check that "+d.Name+" is up and reachable from the dyno (its server, endpoint, network and firewall); the next run writes there again").
					Msg(msg)
			case len(dests) > 1:
				log.Warn().Str("destination", d.Name).Err(errs[i]).Msg("copy failed (the other destinations go on)")
			}
		}
		out[i] = c
	}
	return out, existing
}

// copiesErr is the target's error when some copies failed: which ones, and why.
func copiesErr(where string, copies []Copy) error {
	var failed []error
	for _, c := range copies {
		if c.Err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", c.Destination, c.Err))
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(copies) == 1:
		return fmt.Errorf("archive: %s: %w", where, copies[0].Err)
	}
	return fmt.Errorf("archive: %s: %d of %d copies failed: %w", where, len(failed), len(copies), errors.Join(failed...))
}
