// Package notify tells the outside world how a run went, so that a failed or missing run is never
// silent: heartbeat pings for a dead man's switch, and a webhook with the results.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// TargetResult is one target's outcome.
type TargetResult struct {
	App             string        `json:"app"`
	Database        string        `json:"database"`
	Backup          string        `json:"backup,omitempty"`
	Bytes           int64         `json:"bytes"`
	Duration        time.Duration `json:"-"`
	Location        string        `json:"location,omitempty"`
	AlreadyArchived bool          `json:"already_archived,omitempty"`
	// FramingOnly names the tables whose data the run checked for framing only, not
	// decompressed; OtherFramingOnly counts the large objects and other data it did so with.
	FramingOnly      []string `json:"framing_only_tables,omitempty"`
	OtherFramingOnly int      `json:"framing_only_other,omitempty"`
	Error            string   `json:"error,omitempty"`
	// Copies is the outcome at each destination (ARCHIVE_URL may name several): a target fails
	// when any copy did, and this says which copies exist.
	Copies []Copy `json:"copies,omitempty"`
}

// Copy is one destination's outcome for a target.
type Copy struct {
	Destination string `json:"destination"`
	Location    string `json:"location,omitempty"`
	Status      string `json:"status"` // archived, already archived or failed
	Error       string `json:"error,omitempty"`
}

// copies says, for people, which copies of a failed target exist; "" when there is one
// destination or none exists.
func (t TargetResult) copies() string {
	var stored, failed []string
	for _, c := range t.Copies {
		if c.Status == "failed" {
			failed = append(failed, c.Destination)
		} else {
			stored = append(stored, c.Location)
		}
	}
	if len(t.Copies) < 2 || len(stored) == 0 {
		return ""
	}
	return fmt.Sprintf(" (stored at %s; failed at %s)", strings.Join(stored, ", "), strings.Join(failed, ", "))
}

// partly says, for people, what of an archive was checked for framing only; "" when nothing was.
func (t TargetResult) partly() string {
	if len(t.FramingOnly) == 0 && t.OtherFramingOnly == 0 {
		return ""
	}
	var what []string
	if len(t.FramingOnly) > 0 {
		what = append(what, "tables "+strings.Join(t.FramingOnly, ", "))
	}
	if t.OtherFramingOnly > 0 {
		what = append(what, fmt.Sprintf("%d large object(s) or other data", t.OtherFramingOnly))
	}
	return "; checked for framing only, not decompressed (run pgoffsite verify): " + strings.Join(what, " and ")
}

// Run is one run of a command.
type Run struct {
	Command     string // backup, bundle, verify or status: each run reports as the command it is
	Started     time.Time
	Finished    time.Time
	Results     []TargetResult
	Interrupted bool
	Version     string
}

// Failed reports whether any target failed or the run was interrupted.
func (r Run) Failed() bool {
	if r.Interrupted {
		return true
	}
	for _, t := range r.Results {
		if t.Error != "" {
			return true
		}
	}
	return false
}

// Options configure a Notifier.
type Options struct {
	// HeartbeatURL is the dead man's switch of the command that runs, read from the variable
	// HeartbeatVar (HEARTBEAT_URL when empty), which messages name.
	HeartbeatURL string
	HeartbeatVar string
	WebhookURL   string
	On           string        // "failure" (default) or "always": when the webhook is sent
	Timeout      time.Duration // per request, default 10 s
	HTTP         *http.Client
	UserAgent    string
	Secrets      []string // values scrubbed from every body sent
}

// webhookVar is the variable of the webhook, which every command shares.
const webhookVar = "NOTIFY_WEBHOOK_URL"

// Notifier sends heartbeats and webhooks. A zero Options sends nothing.
type Notifier struct {
	o Options
}

// New checks the URLs (https, or http towards loopback only) and returns a Notifier.
func New(o Options) (*Notifier, error) {
	if o.HeartbeatVar == "" {
		o.HeartbeatVar = "HEARTBEAT_URL"
	}
	for name, raw := range map[string]string{o.HeartbeatVar: o.HeartbeatURL, webhookVar: o.WebhookURL} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || !netguard.Allowed(u) {
			return nil, fmt.Errorf("notify: %s must be an https URL", name)
		}
	}
	if o.On == "" {
		o.On = "failure"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	o.HeartbeatURL = strings.TrimRight(o.HeartbeatURL, "/")
	return &Notifier{o: o}, nil
}

// Start pings <HEARTBEAT_URL>/start: the monitor now expects a success or failure ping, and
// raises an alarm if neither comes.
func (n *Notifier) Start(ctx context.Context) error {
	if n.o.HeartbeatURL == "" {
		return nil
	}
	return n.post(ctx, n.o.HeartbeatVar+" start ping", n.o.HeartbeatURL+"/start", "text/plain", nil)
}

// Finish pings the heartbeat (bare URL on success, /fail on failure) with a short summary, and
// sends the webhook when the run failed or On is "always". Errors are returned for the caller to
// log; they never change the run's result.
func (n *Notifier) Finish(ctx context.Context, run Run) error {
	var errs []error
	if n.o.HeartbeatURL != "" {
		u := n.o.HeartbeatURL
		if run.Failed() {
			u += "/fail"
		}
		errs = append(errs, n.post(ctx, n.o.HeartbeatVar+" ping", u, "text/plain; charset=utf-8", []byte(Summary(run))))
	}
	if n.o.WebhookURL != "" && (run.Failed() || n.o.On == "always") {
		body, err := n.webhookBody(run)
		if err == nil {
			err = n.post(ctx, webhookVar, n.o.WebhookURL, "application/json", body)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Summary is the short plain-text account of a run sent with heartbeat pings.
func Summary(run Run) string {
	var b strings.Builder
	failed, total := 0, int64(0)
	for _, t := range run.Results {
		if t.Error != "" {
			failed++
		}
		total += t.Bytes
	}
	state := "succeeded"
	switch {
	case run.Interrupted:
		state = "was interrupted"
	case failed > 0:
		state = "FAILED"
	}
	fmt.Fprintf(&b, "pgoffsite %s %s: %d target(s), %d failed, %d bytes\n", run.Command, state, len(run.Results), failed, total)
	for _, t := range run.Results {
		if t.Error != "" {
			fmt.Fprintf(&b, "FAILED %s:%s: %s%s\n", t.App, t.Database, t.Error, t.copies())
		} else {
			fmt.Fprintf(&b, "ok     %s:%s %s %d bytes %s%s\n", t.App, t.Database, t.Backup, t.Bytes, t.Location, t.partly())
		}
	}
	s := b.String()
	if len(s) > 10_000 {
		s = s[:10_000]
	}
	return s
}

// Payload is the webhook's JSON (docs/webhook.md).
type Payload struct {
	SchemaVersion int            `json:"schema_version"`
	Command       string         `json:"command"`
	Status        string         `json:"status"` // succeeded, failed or interrupted
	Started       time.Time      `json:"started_at"`
	Finished      time.Time      `json:"finished_at"`
	Version       string         `json:"pgoffsite_version"`
	Targets       []TargetResult `json:"targets"`
}

func status(run Run) string {
	switch {
	case run.Interrupted:
		return "interrupted"
	case run.Failed():
		return "failed"
	}
	return "succeeded"
}

func (n *Notifier) webhookBody(run Run) ([]byte, error) {
	if isSlack(n.o.WebhookURL) {
		var b strings.Builder
		fmt.Fprintf(&b, "*pgoffsite %s %s*", run.Command, status(run))
		for _, t := range run.Results {
			if t.Error != "" {
				fmt.Fprintf(&b, "\n:x: `%s:%s` %s%s", t.App, t.Database, t.Error, t.copies())
			} else {
				fmt.Fprintf(&b, "\n:white_check_mark: `%s:%s` %s, %d bytes%s", t.App, t.Database, t.Backup, t.Bytes, t.partly())
			}
		}
		return json.Marshal(map[string]string{"text": b.String()})
	}
	targets := run.Results
	if targets == nil {
		targets = []TargetResult{}
	}
	return json.Marshal(Payload{SchemaVersion: 1, Command: run.Command, Status: status(run), Started: run.Started.UTC(),
		Finished: run.Finished.UTC(), Version: run.Version, Targets: targets})
}

func isSlack(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Host == "hooks.slack.com"
}

// post sends one notification, bounded by the timeout, retried once on a network error or 5xx.
func (n *Notifier) post(ctx context.Context, what, u, ctype string, body []byte) error {
	body = []byte(n.scrub(string(body)))
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var retry bool
		retry, err = n.send(ctx, u, ctype, body)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("notify: %s to %s: %w", what, hostOf(u), err)
	}
	return nil
}

func (n *Notifier) send(ctx context.Context, u, ctype string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("bad request")
	}
	req.Header.Set("Content-Type", ctype)
	if n.o.UserAgent != "" {
		req.Header.Set("User-Agent", n.o.UserAgent)
	}
	resp, err := n.o.HTTP.Do(req)
	if err != nil {
		// It names the URL, which may hold a ping key.
		return true, scrub.StripURL(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode >= 500, fmt.Errorf("answered %s", resp.Status)
	}
	return false, nil
}

func (n *Notifier) scrub(s string) string {
	return scrub.String(s, n.o.Secrets...)
}

// hostOf names a notification endpoint without its path: a healthchecks.io ping URL's path is
// its secret key.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the configured URL"
	}
	return u.Host
}

// Reach tells whether the endpoint in variable name (raw, its URL) can be reached, without
// pinging it: any request to a healthchecks.io URL counts as a ping (even a GET), so only a
// TCP connection to the host is made, within timeout. It does not prove the URL's path is right.
func Reach(ctx context.Context, name, raw string, timeout time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s is not a URL", name)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("%s: cannot reach %s: %w", name, u.Host, err)
	}
	conn.Close()
	return nil
}
