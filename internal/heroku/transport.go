package heroku

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// The stack under both APIs, top to bottom:
//
//	heroku-go's Transport (Platform API only: auth, Accept, User-Agent, Request-Id)
//	errorTransport        (Platform API only: error answers → *APIError, whatever the body)
//	retryTransport        idempotent requests: 429, 5xx, network errors, within a budget
//	guardTransport        the API key goes to the two configured hosts only
//	the HTTP client's own transport

type idempotentKey struct{}

// idempotent marks a POST that may be sent again: a read-only action such as resolve or
// public-url, or one whose repetition is harmless (cancel).
func idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func canRetry(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // the body cannot be sent twice
	}
	return req.Method == http.MethodGet || req.Method == http.MethodHead || req.Context().Value(idempotentKey{}) != nil
}

// retryTransport retries idempotent requests on 429, 5xx and network errors with capped,
// jittered exponential back-off, honouring Retry-After, within a time budget per call. Other
// requests pass through untouched, and a cancelled context stops it at once.
type retryTransport struct {
	next   http.RoundTripper
	budget time.Duration
	base   time.Duration // first back-off step
	cap    time.Duration // longest back-off step
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !canRetry(req) {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	deadline := time.Now().Add(t.budget)
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.next.RoundTrip(r)
		if ctx.Err() != nil {
			return resp, err
		}
		wait, again := t.wait(resp, err, attempt)
		if !again || time.Now().Add(wait).After(deadline) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// wait says whether an answer is worth another try and after how long: at least the back-off
// step, longer if the server asked for it.
func (t *retryTransport) wait(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	step := backoff.Delay(t.base, t.cap, attempt)
	if err != nil {
		return step, transient(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return 0, false
	}
	return max(step, parseRetryAfter(resp.Header.Get("Retry-After"))), true
}

// transient reports whether a transport error is a network failure worth retrying, as opposed
// to a refusal that will not change (a host we may not talk to, an untrusted certificate, a
// name that does not exist). The caller has already ruled out its own context's end; a dial
// timeout says it is a context.DeadlineExceeded too, so that test cannot be made here.
func transient(err error) bool {
	var he *hostError
	var dns *net.DNSError
	switch {
	case errors.As(err, &he):
		return false
	case errors.As(err, &dns):
		return !dns.IsNotFound
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// net/http's own wording for a connection the server dropped.
	msg := err.Error()
	return strings.Contains(msg, "server closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}

// hostError is a request the guard refused to send.
type hostError struct{ scheme, host string }

func (e *hostError) Error() string {
	return fmt.Sprintf("refusing to send the Heroku API key to %s://%s: only the configured Heroku API hosts, over https (plain http on loopback only)", e.scheme, e.host)
}

// guardTransport sends requests only to the configured API hosts, so that the key, which the
// layers above attach to every request, cannot follow a redirect elsewhere or travel in clear.
type guardTransport struct {
	next    http.RoundTripper
	allowed map[string]bool // scheme://host
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL
	if !t.allowed[u.Scheme+"://"+u.Host] || !netguard.Allowed(u) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &hostError{scheme: u.Scheme, host: u.Host}
	}
	return t.next.RoundTrip(req)
}

// errorTransport sits under heroku-go's Transport and turns error answers into *APIError before
// heroku-go sees them: heroku-go loses the status code when the body is not JSON. Redirects
// count as errors too, since heroku-go fails on them before net/http could follow.
type errorTransport struct {
	next http.RoundTripper
	key  string
}

func (t *errorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(req, resp, t.key)
	}
	return resp, nil
}
