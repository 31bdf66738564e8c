package azstore

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// errBodyDone is what net/http reads of a request's body once its answer came.
var errBodyDone = errors.New("the answer came before the request body was sent")

// bodyFence ends the transport's reads of a request's body when Do returns. The SDK rewinds the
// body to retry, and net/http may still be sending it after the answer came (a server that
// answers before reading it, a proxy's error page): its reads and the rewind would race on one
// buffer. After Do the transport's next read fails, and it drops that connection.
type bodyFence struct{ next stall.Doer }

func (f bodyFence) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return f.next.Do(req)
	}
	b := &fencedBody{body: req.Body}
	req.Body = b
	resp, err := f.next.Do(req)
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
	return resp, err
}

type fencedBody struct {
	mu   sync.Mutex
	body io.ReadCloser
	done bool
}

func (b *fencedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, errBodyDone
	}
	return b.body.Read(p)
}

func (b *fencedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil // the body is the SDK's again: it closes it
	}
	return b.body.Close()
}
