package heroku

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	hk "github.com/heroku/heroku-go/v5"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Dyno is a one-off dyno as the Platform API describes it (POST/GET /apps/{app}/dynos).
type Dyno struct {
	ID      string
	Name    string // run.1234: what log sessions filter on
	State   string // starting, up, crashed, down, idle
	Command string
}

// RunOptions start a detached one-off dyno.
type RunOptions struct {
	Command    string
	Size       string            // e.g. standard-1X; empty: the app's default
	TimeToLive time.Duration     // 0: Heroku's default; at most 24 h
	Env        map[string]string // added to the app's config vars
}

// ErrDynoRefused is a start Heroku refused for now: the account's concurrent one-off dyno limit
// (422 cannot_run_above_limit), a release not visible yet (409), a rate limit (429), or "cannot
// run one-off process at this time". Waiting and asking again is the cure.
var ErrDynoRefused = errors.New("heroku refused to start a dyno for now")

// refusal wraps an APIError that ErrDynoRefused matches, keeping Heroku's words and Retry-After.
type refusal struct{ *APIError }

func (r refusal) Is(target error) bool { return target == ErrDynoRefused }
func (r refusal) Unwrap() error        { return r.APIError }

// RetryAfter is how long Heroku asked to wait (0: it did not say).
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.retryAfter
	}
	return 0
}

// RunDetached starts a detached one-off dyno (attach false): its output goes to the app's logs.
// The POST is not retried here (it is not idempotent); a refusal is ErrDynoRefused.
func (c *Client) RunDetached(ctx context.Context, app string, o RunOptions) (Dyno, error) {
	opts := hk.DynoCreateOpts{Command: o.Command, Attach: ptr(false), Type: ptr("run")}
	if len(o.Env) > 0 {
		opts.Env = o.Env
	}
	if o.Size != "" {
		opts.Size = ptr(o.Size)
	}
	if o.TimeToLive > 0 {
		opts.TimeToLive = ptr(int(min(o.TimeToLive, 24*time.Hour) / time.Second))
	}
	d, err := c.platform.DynoCreate(ctx, url.PathEscape(app), opts)
	if err = platformErr(err); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && refused(ae) {
			return Dyno{}, refusal{ae}
		}
		return Dyno{}, fmt.Errorf("heroku: start a dyno of %s: %w", app, err)
	}
	return Dyno{ID: d.ID, Name: d.Name, State: d.State, Command: d.Command}, nil
}

// DynoList lists the app's dynos.
func (c *Client) DynoList(ctx context.Context, app string) ([]Dyno, error) {
	ds, err := listAll[hk.Dyno](ctx, c, c.lists, appURL(app)+"/dynos", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: list the dynos of %s: %w", app, err)
	}
	out := make([]Dyno, len(ds))
	for i, d := range ds {
		out[i] = Dyno{ID: d.ID, Name: d.Name, State: d.State, Command: d.Command}
	}
	return out, nil
}

// refused tells the answers to a dyno start that mean "not now" from those that mean "never".
// The limit's real status is 422 with id cannot_run_above_limit (seen in the wild; Heroku's
// own docs do not show the body); 429 covers both the rate limit and a limit answered as such.
func refused(ae *APIError) bool {
	switch {
	case ae.Status == http.StatusConflict, ae.Status == http.StatusTooManyRequests:
		return true
	case ae.ID == "cannot_run_above_limit":
		return true
	case ae.Status == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(ae.Message), "cannot run"):
		return true
	}
	return false
}

// DynoInfo reads a dyno's state; a dyno that ended is gone (IsNotFound).
func (c *Client) DynoInfo(ctx context.Context, app, id string) (Dyno, error) {
	d, err := c.platform.DynoInfo(ctx, url.PathEscape(app), url.PathEscape(id))
	if err = platformErr(err); err != nil {
		return Dyno{}, fmt.Errorf("heroku: read dyno %s of %s: %w", id, app, err)
	}
	return Dyno{ID: d.ID, Name: d.Name, State: d.State, Command: d.Command}, nil
}

// StopDyno stops a dyno (SIGTERM, then SIGKILL after Heroku's grace). Stopping twice is harmless,
// so it is retried like a read.
func (c *Client) StopDyno(ctx context.Context, app, id string) error {
	_, err := c.platform.DynoStop(idempotent(ctx), url.PathEscape(app), url.PathEscape(id))
	if err = platformErr(err); err != nil {
		return fmt.Errorf("heroku: stop dyno %s of %s: %w", id, app, err)
	}
	return nil
}

// Logs opens a tailing log session of one dyno's output and returns its lines as the process
// wrote them (without the timestamp and source prefix). The session's URL carries its own
// token: it is a secret and is never logged. Close the reader to end the session.
func (c *Client) Logs(ctx context.Context, app, dyno string) (*LogStream, error) {
	s, err := c.platform.LogSessionCreate(idempotent(ctx), url.PathEscape(app), hk.LogSessionCreateOpts{Dyno: ptr(dyno), Tail: ptr(true), Source: ptr("app")})
	if err = platformErr(err); err != nil {
		return nil, fmt.Errorf("heroku: open the logs of %s on %s: %w", dyno, app, err)
	}
	u, err := url.Parse(s.LogplexURL)
	if err != nil || !netguard.Allowed(u) {
		return nil, fmt.Errorf("heroku: open the logs of %s on %s: the log session's URL is not https", dyno, app)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.LogplexURL, nil)
	if err != nil {
		return nil, fmt.Errorf("heroku: open the logs of %s on %s: bad log session URL", dyno, app)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.o.UserAgent)
	// No Authorization: the URL's token is the credential, and the key must not go to logplex.
	resp, err := c.logs().Do(req)
	if err != nil {
		return nil, fmt.Errorf("heroku: read the logs of %s on %s: %w", dyno, app, scrub.StripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("heroku: read the logs of %s on %s: %s", dyno, app, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &LogStream{body: resp.Body, sc: sc}, nil
}

// logs is the client of log streams: no overall timeout (a dyno runs for hours), a bounded
// connection and header wait.
func (c *Client) logs() *http.Client {
	t := defaultTransport()
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// LogStream reads a log session: server-sent events whose data are log lines (what the CLI
// reads), or plain lines.
type LogStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Next returns the next line a process wrote; io.EOF when the stream ended.
func (l *LogStream) Next() (string, error) {
	for l.sc.Scan() {
		line := strings.TrimRight(l.sc.Text(), "\r")
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			line = strings.TrimPrefix(data, " ")
		} else if line == "" || strings.HasPrefix(line, ":") || strings.HasPrefix(line, "id:") || strings.HasPrefix(line, "event:") || strings.HasPrefix(line, "retry:") {
			continue
		}
		return LogMessage(line), nil
	}
	if err := l.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// Close ends the session.
func (l *LogStream) Close() error { return l.body.Close() }

// LogMessage strips Heroku's prefix from a log line: "2026-12-01T12:00:00.000000+00:00
// app[run.1234]: text" is "text". A line without the prefix is returned as it is.
func LogMessage(line string) string {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok || len(ts) < 20 || ts[4] != '-' || ts[10] != 'T' {
		return line
	}
	src, msg, ok := strings.Cut(rest, ": ")
	if !ok || !strings.Contains(src, "[") || !strings.HasSuffix(src, "]") {
		return line
	}
	return msg
}

func ptr[T any](v T) *T { return &v }
