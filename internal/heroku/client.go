// Package heroku talks to Heroku: the Platform API (through heroku-go) to resolve databases, and
// the Data API to capture backups, wait for them, list them and get their download URLs.
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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	hk "github.com/heroku/heroku-go/v5"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// Options configure a Client.
type Options struct {
	APIKey          string
	PlatformURL     string // default https://api.heroku.com
	DataURL         string // default https://api.data.heroku.com
	HTTPClient      *http.Client
	UserAgent       string
	PollInterval    time.Duration // first wait between transfer polls; default 3 s (what the CLI does)
	MaxPollInterval time.Duration // back-off cap; default 30 s
	RetryBudget     time.Duration // time one call may spend retrying; default 2 min
}

// Validate checks the base URLs: https, or http towards loopback only.
func (o Options) Validate() error {
	for _, raw := range []string{o.PlatformURL, o.DataURL} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return fmt.Errorf("heroku: base URL %q is not absolute", raw)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && netguard.IsLoopback(u.Hostname())) {
			return fmt.Errorf("heroku: base URL %s must use https (plain http only on loopback)", u.Host)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.PlatformURL == "" {
		o.PlatformURL = "https://api.heroku.com"
	}
	if o.DataURL == "" {
		o.DataURL = "https://api.data.heroku.com"
	}
	o.PlatformURL = strings.TrimRight(o.PlatformURL, "/")
	o.DataURL = strings.TrimRight(o.DataURL, "/")
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 2 * time.Minute
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.UserAgent == "" {
		o.UserAgent = "pgoffsite"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.MaxPollInterval <= 0 {
		o.MaxPollInterval = 30 * time.Second
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = 2 * time.Minute
	}
	return o
}

// Client is a Heroku API client.
type Client struct {
	o        Options
	platform *hk.Service // Accept: version=3
	sdk      *hk.Service // Accept: version=3.sdk with add-on plans and config vars included
	http     *http.Client
}

// New returns a Client. Call Options.Validate first to refuse insecure base URLs.
func New(o Options) *Client {
	o = o.withDefaults()
	retry := &retryTransport{base: o.HTTPClient.Transport, budget: o.RetryBudget}
	if retry.base == nil {
		retry.base = http.DefaultTransport
	}
	service := func(extra http.Header) *hk.Service {
		s := hk.NewService(&http.Client{Transport: &hk.Transport{
			BearerToken:       o.APIKey,
			UserAgent:         o.UserAgent,
			AdditionalHeaders: extra,
			Transport:         &errorTransport{base: retry},
		}})
		s.URL = o.PlatformURL
		return s
	}
	return &Client{
		o:        o,
		platform: service(nil),
		sdk: service(http.Header{
			"Accept":           {"application/vnd.heroku+json; version=3.sdk"},
			"Accept-Inclusion": {"addon:plan,config_vars"},
		}),
		http: &http.Client{Transport: retry},
	}
}

// APIError is an error answer from Heroku, explained for people. It never holds the API key or
// a signed URL.
type APIError struct {
	Status  int
	ID      string // Heroku's error id, e.g. not_found, unauthorized, rate_limit, two_factor
	Message string // Heroku's message, when it sent one
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		return fmt.Sprintf("401 %s: the API key is invalid or expired (keys from `heroku login` expire; create a long-lived one with `heroku authorizations:create` and set HEROKU_API_KEY)", msg)
	case e.Status == http.StatusForbidden && e.ID == "two_factor":
		return "403 two_factor: this API key needs a second factor, so it cannot be used for automation; create one with `heroku authorizations:create`"
	case e.Status == http.StatusForbidden:
		return fmt.Sprintf("403 %s: the API key's account has no access to this app (add it as a collaborator or use a key of an account that has access)", msg)
	case e.Status == http.StatusTooManyRequests:
		return fmt.Sprintf("429 %s: Heroku's API rate limit was hit, and retrying did not help; try again later", msg)
	case e.Status >= 500:
		return fmt.Sprintf("%d %s: Heroku's API failed, and retrying did not help; see https://status.heroku.com", e.Status, msg)
	}
	return fmt.Sprintf("%d %s", e.Status, msg)
}

// IsPermanent reports whether retrying err cannot help: wrong key, no access, not found,
// invalid request.
func IsPermanent(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusConflict
	}
	return false
}

// IsNotFound reports whether err is Heroku's 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// decodeError turns an error answer into an APIError; the body may not be JSON (the Data API
// has answered 404 with "<h1>Not Found</h1>" labelled application/json).
func decodeError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode}
	var body struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.ID, e.Message = body.ID, body.Message
	} else {
		e.Message = plainText(b)
	}
	return e
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

// errorTransport sits under heroku-go's Transport and turns error answers into APIError before
// heroku-go sees them: heroku-go drops the status code when the body is not JSON.
type errorTransport struct{ base http.RoundTripper }

func (t *errorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

type idempotentKey struct{}

// idempotent marks a POST that may be retried (a read-only action such as resolve or public-url).
func idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// retryTransport retries idempotent requests on 429, 5xx and network errors with capped,
// jittered exponential back-off, honouring Retry-After, within a time budget. A cancelled
// context is never retried.
type retryTransport struct {
	base   http.RoundTripper
	budget time.Duration
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	canRetry := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Context().Value(idempotentKey{}) != nil
	deadline := time.Now().Add(t.budget)
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp, err := t.base.RoundTrip(req)
		if !canRetry || req.Context().Err() != nil {
			return resp, err
		}
		wait, retry := retryAfter(resp, err, attempt)
		if !retry || time.Now().Add(wait).After(deadline) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := backoff.Sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// retryAfter says whether an answer is worth retrying and after how long.
func retryAfter(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused") {
			return backoff.Delay(time.Second, 32*time.Second, attempt), true
		}
		return 0, false
	}
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return 0, false
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if at, err := http.ParseTime(ra); err == nil {
			return max(time.Until(at), 0), true
		}
	}
	return backoff.Delay(time.Second, 32*time.Second, attempt), true
}

// data calls the Data API: method path, JSON answer into out (nil: discarded).
func (c *Client) data(ctx context.Context, method, path string, out any) error {
	return c.dataJSON(ctx, method, path, nil, out)
}

// dataJSON is data with a JSON request body (nil: none).
func (c *Client) dataJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader(nil)
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.o.DataURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.o.APIKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("User-Agent", c.o.UserAgent)
	req.Header.Set("Request-Id", uuid.NewString())
	resp, err := c.http.Do(req)
	if err != nil {
		return stripURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("malformed answer from the Data API (%s): %w", resp.Status, err)
	}
	return nil
}

// stripURL keeps the cause of a transport error and drops the URL it names.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
