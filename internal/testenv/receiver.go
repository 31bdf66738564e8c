package testenv

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Receiver is an HTTP endpoint that records what it is sent: a stand-in for a monitor
// (healthchecks.io) and for a webhook.
type Receiver struct {
	URL string

	mu     sync.Mutex
	events []string          // "METHOD path"
	bodies map[string]string // the last body, by path
	delay  time.Duration
	status int
}

// NewReceiver starts a Receiver that answers 200 at once, until the test ends.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{bodies: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.events = append(r.events, req.Method+" "+req.URL.Path)
	r.bodies[req.URL.Path] = string(b)
	delay, status := r.delay, r.status
	r.mu.Unlock()
	time.Sleep(delay)
	if status != 0 {
		w.WriteHeader(status)
	}
}

// Answer makes later requests wait delay, then answer status (0 for 200).
func (r *Receiver) Answer(delay time.Duration, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay, r.status = delay, status
}

// Seen lists the requests so far, as "METHOD path" joined by commas.
func (r *Receiver) Seen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ",")
}

// Bodies returns the last body sent to each path.
func (r *Receiver) Bodies() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.bodies)
}
