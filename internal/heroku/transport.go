package heroku

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// The stack under both APIs, top to bottom:
//
//	heroku-go's Transport (Platform API only: auth, Accept, User-Agent, Request-Id)
//	errorTransport        (Platform API only: error answers → *APIError, whatever the body)
//	retryTransport        idempotent requests: 429, 5xx, network errors, bad answers, within a budget
//	answerTransport       a 2xx answer must be whole JSON (not a maintenance page, not cut short)
//	guardTransport        the API key goes to the two configured hosts only
//	stall.Transport       an answer whose bytes stop coming is cancelled (a retryable error)
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
	start := time.Now()
	deadline := start.Add(t.budget)
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
			if again && err != nil && attempt > 0 {
				err = &gaveUp{err: err, attempts: attempt + 1, spent: time.Since(start)}
			}
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
	var ae *answerError
	switch {
	case errors.As(err, &ae):
		// A maintenance page or a cut answer comes from Heroku's router or a dropped
		// connection, not from the API refusing: the next attempt may well get JSON.
		return !ae.tooLarge
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

// gaveUp is a transient error that outlasted the retry budget: it says so, so that a reader
// knows the failure was not a one-off.
type gaveUp struct {
	err      error
	attempts int
	spent    time.Duration
}

func (e *gaveUp) Error() string {
	spent := e.spent.Round(time.Second)
	if e.spent < time.Second {
		spent = e.spent.Round(time.Millisecond)
	}
	return fmt.Sprintf("%v (still so after %d attempts over %s)", e.err, e.attempts, spent)
}

func (e *gaveUp) Unwrap() error { return e.err }

type emptyOKKey struct{}

// emptyOK marks a request whose caller reads nothing from a successful answer, so that an
// empty body is not a bad answer.
func emptyOK(ctx context.Context) context.Context {
	return context.WithValue(ctx, emptyOKKey{}, true)
}

// maxAnswer bounds the JSON answer read into memory: a listing of thousands of transfers is a
// few megabytes.
const maxAnswer = 64 << 20

// answerTransport reads each 2xx answer whole and passes on only JSON. Heroku's router has
// answered 200 with an HTML maintenance page, and a connection dropped mid-answer leaves JSON
// cut short: both are an *answerError, which the retry layer above treats as transient, where
// a decoder further up would fail at once with "invalid character '<'".
type answerTransport struct {
	next http.RoundTripper
}

func (t *answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return resp, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	resp.Body.Close()
	if err != nil {
		// A connection dropped mid-answer: a network error like any other (retried).
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if bad := checkAnswer(req, resp, b); bad != nil {
		return nil, bad
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// checkAnswer says what is wrong with a 2xx answer's body b, if anything.
func checkAnswer(req *http.Request, resp *http.Response, b []byte) *answerError {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 && (resp.StatusCode == http.StatusNoContent || req.Context().Value(emptyOKKey{}) != nil) {
		return nil
	}
	if len(b) > maxAnswer {
		return &answerError{op: req.Method + " " + req.URL.Path, status: resp.Status, tooLarge: true}
	}
	if json.Valid(trimmed) {
		return nil
	}
	e := &answerError{op: req.Method + " " + req.URL.Path, status: resp.Status, size: len(b), ctype: resp.Header.Get("Content-Type")}
	switch {
	case strings.Contains(strings.ToLower(e.ctype), "html") || bytes.HasPrefix(trimmed, []byte("<")):
		e.html = true
		e.title = pageTitle(trimmed)
	case bytes.HasPrefix(trimmed, []byte("{")) || bytes.HasPrefix(trimmed, []byte("[")):
		e.cut = true
	}
	return e
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// pageTitle is an HTML page's title as plain text, short, for the message.
func pageTitle(b []byte) string {
	m := titleRE.FindSubmatch(b)
	if m == nil {
		return ""
	}
	s := plainText(m[1])
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// answerError is a 2xx answer that is not the JSON the API promises.
type answerError struct {
	op, status string // "GET /account", "200 OK"
	html, cut  bool
	tooLarge   bool
	title      string
	size       int
	ctype      string
}

func (e *answerError) Error() string {
	switch {
	case e.tooLarge:
		return fmt.Sprintf("%s: Heroku answered %s with more than %d MiB, far more than any answer of this API", e.op, e.status, maxAnswer>>20)
	case e.html:
		title := ""
		if e.title != "" {
			title = fmt.Sprintf(" (%q)", e.title)
		}
		return fmt.Sprintf("%s: Heroku answered %s with an HTML page%s instead of JSON: a maintenance or error page of Heroku's, not an API answer; see https://status.heroku.com and try again later", e.op, e.status, title)
	case e.cut:
		return fmt.Sprintf("%s: Heroku answered %s with JSON cut short or malformed (%d bytes): the answer did not arrive whole", e.op, e.status, e.size)
	case e.size == 0:
		return fmt.Sprintf("%s: Heroku answered %s with an empty body instead of JSON", e.op, e.status)
	default:
		return fmt.Sprintf("%s: Heroku answered %s with %d bytes that are not JSON (Content-Type %q)", e.op, e.status, e.size, e.ctype)
	}
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
	next      http.RoundTripper
	key       string
	remaining *atomic.Int64 // the last RateLimit-Remaining; -1 before any
}

func (t *errorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if n, err := strconv.ParseInt(resp.Header.Get("RateLimit-Remaining"), 10, 64); err == nil {
		t.remaining.Store(n)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(req, resp, t.key)
	}
	return resp, nil
}
