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

// ErrDynoRefused is a start Heroku refused for now: the app's concurrent one-off dyno limit
// (ErrDynoLimit), a release not visible yet (409), a rate limit (429), or "cannot run one-off
// process at this time". Waiting and asking again is the cure.
var ErrDynoRefused = errors.New("heroku refused to start a dyno for now")

// ErrDynoLimit is a start refused because the app runs as many one-off dynos as Heroku lets it
// (Dev Center "Dyno Scaling and Process Limits": 50 Basic/Standard, 5 Performance, 1 Eco, per
// app; pgoffsite's coordinator is one of them when it runs as a one-off dyno itself). It is also
// ErrDynoRefused: the limit lifts as the app's other one-off dynos end.
var ErrDynoLimit = errors.New("the app's concurrent one-off dyno limit is reached")

// ErrDynoUnknown is a start refused with a 422 pgoffsite does not know; its text quotes
// Heroku's id and message.
var ErrDynoUnknown = errors.New("heroku refused to start a dyno with an answer pgoffsite does not know")

// refusal wraps an APIError that ErrDynoRefused matches, keeping Heroku's words and Retry-After;
// limit: the one-off dyno limit (ErrDynoLimit too).
type refusal struct {
	*APIError
	app   string
	limit bool
}

func (r refusal) Is(target error) bool {
	return target == ErrDynoRefused || r.limit && target == ErrDynoLimit
}
func (r refusal) Unwrap() error { return r.APIError }

func (r refusal) Error() string {
	if !r.limit {
		return r.APIError.Error()
	}
	return fmt.Sprintf("%s: the app %s runs as many one-off dynos as Heroku allows it (50 on Basic/Standard, 5 on Performance, 1 on Eco, "+
		"counting pgoffsite's own coordinator and any other one-off dyno of the app): waiting for one to end; "+
		"set BACKUP_FANOUT below the app's limit (or ask Heroku support to raise it)", r.APIError.Error(), r.app)
}

// unknown422 is a 422 answer to a dyno start that is none of the known refusals.
type unknown422 struct {
	*APIError
	app string
}

func (u unknown422) Is(target error) bool { return target == ErrDynoUnknown }
func (u unknown422) Unwrap() error        { return u.APIError }
func (u unknown422) Error() string {
	return fmt.Sprintf("heroku: start a dyno of %s: Heroku refused it with an answer pgoffsite does not know (422, id %q, message %q): "+
		"if it names a limit, lower BACKUP_FANOUT; otherwise set BACKUP_FANOUT=0 to back the targets up on this dyno", u.app, u.ID, u.Message)
}

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
		if errors.As(err, &ae) {
			switch {
			case dynoLimit(ae):
				return Dyno{}, refusal{APIError: ae, app: app, limit: true}
			case refused(ae):
				return Dyno{}, refusal{APIError: ae, app: app}
			case ae.Status == http.StatusUnprocessableEntity:
				return Dyno{}, unknown422{APIError: ae, app: app}
			}
		}
		return Dyno{}, fmt.Errorf("heroku: start a dyno of %s: %w", app, err)
	}
	return Dyno{ID: d.ID, Name: d.Name, State: d.State, Command: d.Command}, nil
}

// DynoList lists the app's dynos.
func (c *Client) DynoList(ctx context.Context, app string) ([]Dyno, error) {
	ds, err := listAll[hk.Dyno](ctx, c.lists, appURL(app)+"/dynos", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: list the dynos of %s: %w", app, err)
	}
	out := make([]Dyno, len(ds))
	for i, d := range ds {
		out[i] = Dyno{ID: d.ID, Name: d.Name, State: d.State, Command: d.Command}
	}
	return out, nil
}

// dynoLimit tells a refusal for the one-off dyno limit. Its real answer is unverified: the id
// cannot_run_above_limit and the message "Cannot run more than 1 Free size dynos." were seen in
// public client logs (docs/heroku-dynos.md); any 422 whose id or message speaks of the limit counts.
func dynoLimit(ae *APIError) bool {
	if ae.Status != http.StatusUnprocessableEntity && ae.Status != http.StatusTooManyRequests {
		return false
	}
	msg := strings.ToLower(ae.Message)
	return ae.ID == "cannot_run_above_limit" || strings.Contains(ae.ID, "limit") && ae.ID != "rate_limit" ||
		strings.Contains(msg, "cannot run more than") || strings.Contains(msg, "dyno limit") || strings.Contains(msg, "above limit")
}

// refused tells the answers to a dyno start that mean "not now" from those that mean "never":
// 409 (the release is not visible yet: the CLI retries it, src/lib/run/dyno.ts), 429 (the rate
// limit), and "Cannot run one-off process at this time. Please try again later." (seen in
// heroku/cli#733; its status unverified).
func refused(ae *APIError) bool {
	switch {
	case ae.Status == http.StatusConflict, ae.Status == http.StatusTooManyRequests:
		return true
	case strings.Contains(strings.ToLower(ae.Message), "cannot run one-off process at this time"):
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
// so it is retried like a read. Its 202 is success whatever its body: the schema's empty object
// or nothing at all; nothing of it is read.
func (c *Client) StopDyno(ctx context.Context, app, id string) error {
	err := c.platform.Post(emptyOK(idempotent(ctx)), nil, appURL(app)+"/dynos/"+url.PathEscape(id)+"/actions/stop", nil)
	if err = platformErr(err); err != nil {
		return fmt.Errorf("heroku: stop dyno %s of %s: %w", id, app, err)
	}
	return nil
}

// LogOptions choose what a log session replays and streams.
type LogOptions struct {
	Dyno string // run.1234, or a process type for all its dynos; "": the whole app
	// Lines is how many of the app's newest lines the session replays before the dyno filter
	// applies (logplex keeps 1,500); 0: logplex's default, 100.
	Lines int
	// Platform adds Heroku's own lines (heroku[run.1234]: Process exited with status 0) to the
	// process's.
	Platform bool
}

// Logs opens a tailing log session of one dyno's output and returns its lines as the process
// wrote them (without the timestamp and source prefix). The session's URL carries its own
// token: it is a secret and is never logged. Close the reader to end the session.
func (c *Client) Logs(ctx context.Context, app, dyno string) (*LogStream, error) {
	return c.LogSession(ctx, app, LogOptions{Dyno: dyno})
}

// LogSession opens a tailing log session of the app's log as o says.
func (c *Client) LogSession(ctx context.Context, app string, o LogOptions) (*LogStream, error) {
	dyno := o.Dyno
	if dyno == "" {
		dyno = "all dynos"
	}
	opts := hk.LogSessionCreateOpts{Tail: ptr(true)}
	if o.Dyno != "" {
		opts.Dyno = ptr(o.Dyno)
	}
	if !o.Platform {
		opts.Source = ptr("app")
	}
	if o.Lines > 0 {
		opts.Lines = ptr(o.Lines)
	}
	s, err := c.platform.LogSessionCreate(idempotent(ctx), url.PathEscape(app), opts)
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
	line, err := l.NextLine()
	return line.Text, err
}

// LogLine is one line of an app's log.
type LogLine struct {
	At     time.Time // zero when the line had no Heroku prefix
	Source string    // app, heroku
	Dyno   string    // run.1234, router
	Text   string    // what the process (or Heroku) wrote
}

// NextLine returns the next line with where it came from; io.EOF when the stream ended.
func (l *LogStream) NextLine() (LogLine, error) {
	for l.sc.Scan() {
		line := strings.TrimRight(l.sc.Text(), "\r")
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			line = strings.TrimPrefix(data, " ")
		} else if line == "" || strings.HasPrefix(line, ":") || strings.HasPrefix(line, "id:") || strings.HasPrefix(line, "event:") || strings.HasPrefix(line, "retry:") {
			continue
		}
		return parseLogLine(line), nil
	}
	if err := l.sc.Err(); err != nil {
		return LogLine{}, err
	}
	return LogLine{}, io.EOF
}

// Close ends the session.
func (l *LogStream) Close() error { return l.body.Close() }

// LogMessage strips Heroku's prefix from a log line: "2026-12-01T12:00:00.000000+00:00
// app[run.1234]: text" is "text". A line without the prefix is returned as it is.
func LogMessage(line string) string { return parseLogLine(line).Text }

// parseLogLine splits Heroku's prefix from a log line; a line without one is all text.
func parseLogLine(line string) LogLine {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok || len(ts) < 20 || ts[4] != '-' || ts[10] != 'T' {
		return LogLine{Text: line}
	}
	src, msg, ok := strings.Cut(rest, ": ")
	if !ok || !strings.Contains(src, "[") || !strings.HasSuffix(src, "]") {
		return LogLine{Text: line}
	}
	source, dyno, _ := strings.Cut(strings.TrimSuffix(src, "]"), "[")
	at, _ := time.Parse(time.RFC3339Nano, ts)
	return LogLine{At: at, Source: source, Dyno: dyno, Text: msg}
}

func ptr[T any](v T) *T { return &v }
