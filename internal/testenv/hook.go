package testenv

import (
	"io"
	"sync"
	"testing"
	"time"
)

// HookReader reads R and runs Hook once, blocking the reader, when After bytes were read and
// before any byte past them: a fault injected there meets an upload whose first After bytes
// are on their way and whose rest is not read yet.
type HookReader struct {
	R     io.Reader
	After int
	Hook  func()
	n     int
	once  sync.Once
}

func (h *HookReader) Read(p []byte) (int, error) {
	if h.n >= h.After {
		h.once.Do(h.Hook)
	} else if len(p) > h.After-h.n {
		p = p[:h.After-h.n]
	}
	n, err := h.R.Read(p)
	h.n += n
	return n, err
}

// Within is what done yields within bound; t fails if nothing comes: a call that hangs is the
// failure a fault test looks for.
func Within[T any](t testing.TB, done <-chan T, bound time.Duration) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(bound):
		t.Fatalf("no result within %s", bound)
		var zero T
		return zero
	}
}
