package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Destination is one place every archive is written to.
type Destination struct {
	Name  string // as ARCHIVE_URL names it, e.g. s3://bucket/prefix; never a secret
	Store store.Store
	// Markers, when set, is how the destination tells which retention periods already have an
	// archive (RETENTION): markers are looked up there and written there after each archive.
	Markers retention.Markers
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

// putAll reads r once and writes it to every destination at the same time, with back-pressure
// from the slowest. A destination that fails is detached (its Put returns its error) while the
// others go on; an error from r reaches every destination still reading, so that none of them
// makes the object visible. It returns one error per destination (nil: stored).
func putAll(ctx context.Context, dests []Destination, obj store.Object, r io.Reader) []error {
	errs := make([]error, len(dests))
	if len(dests) == 1 {
		// Nothing to share: the destination reads the stream itself, with no copy in between.
		errs[0] = dests[0].Store.Put(ctx, obj, r)
		return errs
	}
	pipes := make([]*io.PipeWriter, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		pr, pw := io.Pipe()
		pipes[i] = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Store.Put(ctx, obj, pr)
			// Whatever the destination did not read stays unread: the tee must not wait for it.
			pr.CloseWithError(errDetached)
		}()
	}
	tee(r, pipes)
	wg.Wait()
	return errs
}

// tee copies r to every writer until r ends or no writer is left, and closes each writer: with
// nil after a clean end, with r's error otherwise.
func tee(r io.Reader, ws []*io.PipeWriter) {
	alive := make([]bool, len(ws))
	for i := range alive {
		alive[i] = true
	}
	left := len(ws)
	buf := make([]byte, fanoutChunk)
	werrs := make([]error, len(ws))
	var wg sync.WaitGroup
	for left > 0 {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			// Every destination gets the chunk at the same time; the next chunk waits for the
			// slowest, which is what bounds memory.
			for i, w := range ws {
				if !alive[i] {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, werrs[i] = w.Write(buf[:n])
				}()
			}
			wg.Wait()
			for i := range ws {
				if alive[i] && werrs[i] != nil {
					alive[i] = false
					left--
				}
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			for i, w := range ws {
				if alive[i] {
					w.Close()
				}
			}
			return
		case err != nil:
			for _, w := range ws {
				w.CloseWithError(err)
			}
			return
		}
	}
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
