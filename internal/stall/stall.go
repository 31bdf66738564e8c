// Package stall cancels an HTTP request whose bytes stop moving while its connection stays open,
// and says what stalled. A peer that stops sending mid-body, stops reading a request body, or
// never answers keeps a TCP connection alive for hours; no read ever fails. A whole-request
// timeout would also kill a big part that is slow but moving, so the rule here is silence, not
// duration: the request is cancelled only when the side it waits on has been quiet too long.
//
//	request body    the transport must keep taking bytes; quiet for Idle → stalled
//	response head   once the request is sent, headers are due within Header
//	response body   while a Read waits, bytes are due within Idle (a reader that pauses
//	                between Reads is not the network's fault and never counts)
//
// The error (*Error) is temporary and retryable, so callers retry it like a reset connection
// (as often as WithRetries allows, when it is used); the warning logged through zerolog.Ctx(req.Context()) names the request (WithLabel) and the
// host, never the URL, whose query may be a signature.
package stall

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults: long enough for a slow link or a busy server, short enough that a stalled range or
// part is retried well within a minute of its last byte.
const (
	DefaultIdle   = 30 * time.Second
	DefaultHeader = 60 * time.Second
)

// Options are the silences tolerated; zero values take the defaults.
type Options struct {
	Idle   time.Duration // no body bytes moving while the peer owes some
	Header time.Duration // no response headers after the request was sent
}

func (o Options) withDefaults() Options {
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.Header <= 0 {
		o.Header = DefaultHeader
	}
	return o
}

// Doer sends one HTTP request: *http.Client, or the AWS SDK's HTTP client.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client watches every request it sends through Next.
type Client struct {
	Next    Doer
	Options Options
}

var _ Doer = (*Client)(nil)

// Transport is Client for code that builds an *http.Client around a transport.
type Transport struct {
	Next    http.RoundTripper // nil: http.DefaultTransport
	Options Options
}

var _ http.RoundTripper = (*Transport)(nil)

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return (&Client{Next: roundTripper{next}, Options: t.Options}).Do(req)
}

type roundTripper struct{ http.RoundTripper }

func (r roundTripper) Do(req *http.Request) (*http.Response, error) { return r.RoundTrip(req) }

// Error reports a stall: what the request was waiting for, from which host, for how long.
type Error struct {
	Host  string
	Phase string        // "request body", "response headers" or "response body"
	Quiet time.Duration // how long nothing moved
	Bytes int64         // request body bytes taken (request body, response headers), or response body bytes received
	Size  int64         // the request body's length, -1 when unknown or not what stalled
	// Final says the stall used up the retries its caller allows (WithRetries): it is not
	// worth retrying any more.
	Final bool
}

func (e *Error) Error() string {
	switch e.Phase {
	case phaseSending:
		size := "?"
		if e.Size >= 0 {
			size = fmt.Sprint(e.Size)
		}
		return fmt.Sprintf("stalled: %s stopped taking the request body for %s after %d of %s bytes", e.Host, e.Quiet, e.Bytes, size)
	case phaseReceiving:
		return fmt.Sprintf("stalled: %s sent no response body bytes for %s after %d bytes", e.Host, e.Quiet, e.Bytes)
	default:
		return fmt.Sprintf("stalled: %s sent no response headers for %s after the request was sent", e.Host, e.Quiet)
	}
}

// Timeout, Temporary and RetryableError mark a stall as worth retrying, for net.Error users and
// the AWS SDK's retryer, unless it is Final.
func (e *Error) Timeout() bool        { return true }
func (e *Error) Temporary() bool      { return !e.Final }
func (e *Error) RetryableError() bool { return !e.Final }

type (
	labelKey    struct{}
	atMostKey   struct{}
	activityKey struct{}
	retriesKey  struct{}
)

// WithLabel names the requests made with ctx in stall warnings, e.g. "download range 0-8388607"
// or "upload part 3 of s3://bucket/key". It must not contain secrets.
func WithLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, labelKey{}, label)
}

// AtMost caps the silences tolerated for the requests made with ctx at o's (zero fields cap
// nothing): a caller that retries on its own terms (an upload, whose answer is due at once) can
// be stricter than the client's defaults, never looser.
func AtMost(ctx context.Context, o Options) context.Context {
	return context.WithValue(ctx, atMostKey{}, o)
}

// WithActivity has fn called whenever a request made with ctx moves bytes (its body taken by
// the network, or answer bytes arriving): a caller that watches a whole transfer — the fan-out
// to several destinations — sees that a destination busy sending is not silent. fn must be
// quick; it may be called from several goroutines at once.
func WithActivity(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, activityKey{}, fn)
}

// WithRetries allows the requests made with ctx n retries after stalls, between them all: the
// stall after the nth is Final, which the AWS SDK's retryer does not retry. A client that
// retries every failure many times (a store unreachable for seconds is ridden out) then gives
// up on a peer that stops answering after n+1 silences, not after all its attempts.
func WithRetries(ctx context.Context, n int) context.Context {
	b := &retryBudget{}
	b.left.Store(int64(n))
	return context.WithValue(ctx, retriesKey{}, b)
}

type retryBudget struct{ left atomic.Int64 }

// spend counts one stall and tells whether it was the last one allowed.
func (b *retryBudget) spend() (final bool) { return b != nil && b.left.Add(-1) < 0 }

// forRequest is the silences tolerated for a request made with ctx.
func (o Options) forRequest(ctx context.Context) Options {
	o = o.withDefaults()
	if c, ok := ctx.Value(atMostKey{}).(Options); ok {
		if c.Idle > 0 {
			o.Idle = min(o.Idle, c.Idle)
		}
		if c.Header > 0 {
			o.Header = min(o.Header, c.Header)
		}
	}
	return o
}

const (
	phaseSending   = "request body"
	phaseWaiting   = "response headers"
	phaseReceiving = "response body"
	phaseFinished  = ""
)

// Do sends req through Next, cancelling it with an *Error when it stalls. The warning is logged
// before the request is cancelled.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	o := c.Options.forRequest(req.Context())
	ctx, cancel := context.WithCancelCause(req.Context())
	label, _ := req.Context().Value(labelKey{}).(string)
	if label == "" {
		label = req.Method + " request"
	}
	activity, _ := req.Context().Value(activityKey{}).(func())
	if activity == nil {
		activity = func() {}
	}
	budget, _ := req.Context().Value(retriesKey{}).(*retryBudget)
	w := &watch{o: o, host: req.URL.Host, label: label, log: zerolog.Ctx(req.Context()), cancel: cancel, size: req.ContentLength,
		activity: activity, budget: budget}
	r := req.WithContext(ctx)
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody {
		r.Body = &requestBody{w: w, rc: req.Body}
		if req.GetBody != nil {
			r.GetBody = func() (io.ReadCloser, error) { // a transport's own retry must be watched too
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				w.restart()
				return &requestBody{w: w, rc: b}, nil
			}
		}
	}
	w.start(hasBody)
	resp, err := c.Next.Do(r)
	if serr := w.headers(); serr != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		cancel(serr)
		return nil, serr
	}
	if err != nil {
		w.finish()
		cancel(nil)
		return resp, err
	}
	resp.Body = &responseBody{w: w, rc: resp.Body}
	return resp, nil
}

// watch is one request's watchdog: one timer, re-armed lazily through deadline so that a Read
// costs a clock reading, not a timer reset.
type watch struct {
	o        Options
	host     string
	label    string
	log      *zerolog.Logger
	cancel   context.CancelCauseFunc
	activity func()       // called, outside mu, when bytes move
	budget   *retryBudget // the stalls its caller allows; nil: no bound here

	mu       sync.Mutex
	phase    string
	armed    bool // whether silence counts now
	quiet    time.Duration
	deadline time.Time
	timer    *time.Timer
	ticking  bool // the timer is scheduled, for fireAt
	fireAt   time.Time
	sent     int64
	size     int64
	received int64
	pending  int // response body Reads waiting
	err      *Error
}

func (w *watch) start(hasBody bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if hasBody {
		w.phase = phaseSending
		w.armLocked(w.o.Idle)
	} else {
		w.phase = phaseWaiting
		w.armLocked(w.o.Header)
	}
}

// restart is a resent request body: it is owed from its first byte again.
func (w *watch) restart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.phase != phaseFinished && w.phase != phaseReceiving {
		w.phase, w.sent = phaseSending, 0
		w.armLocked(w.o.Idle)
	}
}

// armLocked makes silence count from now for d.
func (w *watch) armLocked(d time.Duration) {
	w.armed, w.quiet = true, d
	w.deadline = time.Now().Add(d)
	switch {
	case w.timer == nil:
		w.timer = time.AfterFunc(d, w.fire)
	case !w.ticking || w.deadline.Before(w.fireAt): // a shorter silence than the one scheduled
		w.timer.Reset(d)
	default:
		return // the timer fires first and re-arms itself for the rest
	}
	w.ticking, w.fireAt = true, w.deadline
}

func (w *watch) fire() {
	w.mu.Lock()
	if w.phase == phaseFinished || w.err != nil || !w.armed {
		w.ticking = false
		w.mu.Unlock()
		return
	}
	if left := time.Until(w.deadline); left > 0 {
		w.timer.Reset(left)
		w.fireAt = w.deadline
		w.mu.Unlock()
		return
	}
	w.ticking = false
	e := &Error{Host: w.host, Phase: w.phase, Quiet: w.quiet, Size: -1}
	switch w.phase {
	case phaseSending, phaseWaiting:
		e.Bytes, e.Size = w.sent, w.size
		if e.Size <= 0 {
			e.Size = -1
		}
	case phaseReceiving:
		e.Bytes = w.received
	}
	e.Final = w.budget.spend()
	w.err = e
	w.mu.Unlock()
	msg := "network stall: no bytes moved, request cancelled (it is retried if attempts remain)"
	if e.Final {
		msg = "network stall: no bytes moved, request cancelled (its retries are used up: it is not retried)"
	}
	w.log.Warn().Str("request", w.label).Str("host", w.host).Str("stalled", e.Phase).
		Str("quiet", e.Quiet.String()).Int64("bytes", e.Bytes).Msg(msg)
	w.cancel(e)
}

// headers is called when Next.Do returned: the body, if any, is now read from the response.
// It reports the stall that ended the request, if one did.
func (w *watch) headers() *Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.stopLocked()
		return w.err
	}
	w.phase, w.armed = phaseReceiving, false
	return nil
}

func (w *watch) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked()
}

func (w *watch) stopLocked() {
	w.phase = phaseFinished
	w.armed = false
	if w.timer != nil {
		w.timer.Stop()
		w.ticking = false
	}
}

// requestBody counts what the transport takes. Time spent inside the source's own Read is not
// the network's: the watch is paused for it.
type requestBody struct {
	w  *watch
	rc io.ReadCloser
}

func (b *requestBody) Read(p []byte) (int, error) {
	w := b.w
	w.mu.Lock()
	sending := w.phase == phaseSending
	if sending {
		w.armed = false
	}
	w.mu.Unlock()
	n, err := b.rc.Read(p)
	if !sending {
		return n, err
	}
	if n > 0 {
		w.activity()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase != phaseSending {
		return n, err
	}
	w.sent += int64(n)
	if err != nil || (w.size > 0 && w.sent >= w.size) {
		w.phase = phaseWaiting // all of it handed over: the answer is due
		w.armLocked(w.o.Header)
	} else {
		w.armLocked(w.o.Idle)
	}
	return n, err
}

func (b *requestBody) Close() error { return b.rc.Close() }

// responseBody counts what arrives while its reader waits; Close ends the watch and the request.
type responseBody struct {
	w    *watch
	rc   io.ReadCloser
	once sync.Once
}

func (b *responseBody) Read(p []byte) (int, error) {
	w := b.w
	w.mu.Lock()
	if w.phase == phaseReceiving {
		w.pending++
		if w.pending == 1 {
			w.armLocked(w.o.Idle)
		}
	}
	w.mu.Unlock()
	n, err := b.rc.Read(p)
	if n > 0 {
		w.activity()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase == phaseReceiving {
		w.pending--
		w.received += int64(n)
		switch {
		case w.pending == 0:
			w.armed = false
		case n > 0:
			w.deadline = time.Now().Add(w.o.Idle)
		}
	}
	if err != nil && w.err != nil {
		return n, w.err
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() {
		b.w.finish()
		b.w.cancel(nil)
	})
	return err
}
