package heroku

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// ErrNoBackup reports that Heroku has no successful backup of a database.
var ErrNoBackup = errors.New("no successful backup")

// ErrTimeout reports that Wait gave up before Heroku finished a transfer; Heroku may still be
// running it (the caller may Cancel it).
var ErrTimeout = errors.New("transfer did not finish in time")

// APIError is an error answer from Heroku, explained for people. Its text never holds the API
// key, a signed URL or a database password.
type APIError struct {
	Op      string // method and path, e.g. "GET /apps/shop/config-vars" (never the query string)
	Status  int
	ID      string // Heroku's error id, e.g. not_found, unauthorized, rate_limit, two_factor
	Message string // Heroku's message, or a short plain-text digest of a non-JSON body

	retryAfter time.Duration // from a Retry-After header, for callers that retry themselves
}

func (e *APIError) Error() string {
	var s string
	switch {
	case e.Status == http.StatusUnauthorized:
		s = "401 unauthorized: the API key (HEROKU_API_KEY) is invalid or expired (keys from `heroku login` expire; create a long-lived one with `heroku authorizations:create` and set it as HEROKU_API_KEY)"
	case e.Status == http.StatusForbidden && e.ID == "two_factor":
		s = "403 two_factor: the API key (HEROKU_API_KEY) needs a second factor, so it is not usable for automation; create a long-lived one with `heroku authorizations:create`"
	case e.Status == http.StatusForbidden:
		s = "403 forbidden" + e.said() + ": the API key's account has no access here (make it a collaborator of the app, or use a key of an account that has access)"
	case e.Status == http.StatusNotFound:
		s = "404 not found" + e.said()
	case e.Status == http.StatusTooManyRequests:
		s = "429 rate limited" + e.said() + ": Heroku's API rate limit was hit and waiting did not help; try again later"
	case e.Status >= 500:
		s = fmt.Sprintf("%d %s%s: Heroku's API is failing and retrying did not help; see https://status.heroku.com", e.Status, e.label(), e.said())
	default:
		s = fmt.Sprintf("%d %s%s", e.Status, e.label(), e.said())
	}
	if e.Op == "" {
		return s
	}
	return e.Op + ": " + s
}

func (e *APIError) label() string {
	if e.ID != "" {
		return e.ID
	}
	return strings.ToLower(http.StatusText(e.Status))
}

func (e *APIError) said() string {
	if e.Message == "" || strings.EqualFold(e.Message, http.StatusText(e.Status)) {
		return ""
	}
	return ": " + e.Message
}

// IsPermanent reports whether retrying err cannot help: a wrong or expired key, no access, not
// found, an invalid request. Rate limits, conflicts and timeouts are not permanent.
func IsPermanent(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 {
		return false
	}
	switch ae.Status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}

// IsNotFound reports whether err is Heroku's 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// decodeError turns an error answer into an APIError. The body may not be JSON, whatever its
// Content-Type says: the Data API has answered 404 with "<h1>Not Found</h1>" labelled JSON.
func decodeError(req *http.Request, resp *http.Response, key string) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Op: req.Method + " " + req.URL.Path, Status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var body struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.ID, e.Message = body.ID, body.Message
	} else {
		e.Message = plainText(b)
	}
	e.Message = redact(e.Message, key)
	return e
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date. 0 when absent or bad.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// plainText reduces a non-JSON error body to a short line without markup.
func plainText(b []byte) string {
	var out strings.Builder
	inTag := false
	for _, r := range string(b) {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
			out.WriteByte(' ')
		case !inTag:
			out.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(out.String()), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// redact removes from text that reached us from a server (an error message, a log line) what
// must never be shown: the API key, signed URLs' query strings, passwords in URLs.
func redact(s, key string) string {
	return scrub.String(s, key)
}

// TransferError is a backup (or restore) that Heroku reports as failed or cancelled.
type TransferError struct {
	Transfer Transfer
	Logs     []string // Heroku's last log lines for the transfer, oldest first
}

func (e *TransferError) Error() string {
	state := "failed"
	if !e.Transfer.CanceledAt.IsZero() {
		state = "was cancelled"
	}
	msg := fmt.Sprintf("%s %s %s on Heroku", e.Transfer.kind(), e.Transfer.Name(), state)
	if len(e.Logs) > 0 {
		msg += "; Heroku's last log lines: " + strings.Join(e.Logs, " | ")
	}
	return msg
}

// waitTimeout is ErrTimeout with what timed out, and after how long.
type waitTimeout struct {
	kind    string
	timeout time.Duration
}

func (e *waitTimeout) Error() string {
	return fmt.Sprintf("the %s did not finish in %s (Heroku may still be running it)", e.kind, e.timeout)
}

func (e *waitTimeout) Is(target error) bool { return target == ErrTimeout }
