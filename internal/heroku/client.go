// Package heroku talks to Heroku: the Platform API (through heroku-go) to resolve databases, and
// the Data API to capture backups, wait for them, list them and get their download URLs
// (shared/heroku-api.md).
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
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	hk "github.com/heroku/heroku-go/v5"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// Options configure a Client.
type Options struct {
	APIKey          string
	PlatformURL     string        // default https://api.heroku.com
	DataURL         string        // default https://api.data.heroku.com
	HTTPClient      *http.Client  // its Transport is used; default: timeouts on each step, none overall (use ctx)
	UserAgent       string        // e.g. pgoffsite/1.2.3
	PollInterval    time.Duration // first wait between transfer polls; default 3 s (what the CLI does)
	MaxPollInterval time.Duration // the waits grow ×1.5 up to this; default 30 s
	RetryBudget     time.Duration // time one call may spend retrying; default 2 min
	Stall           stall.Options // silences after which a request is cancelled (and retried when it may be)
}

const (
	defaultPlatformURL = "https://api.heroku.com"
	defaultDataURL     = "https://api.data.heroku.com"
)

// Validate checks the base URLs: absolute, and https (plain http towards loopback only, for a
// local simulator). New's client refuses to send anything to a URL that fails this.
func (o Options) Validate() error {
	for _, raw := range []string{o.PlatformURL, o.DataURL} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return fmt.Errorf("heroku: base URL %q is not an absolute URL", redact(raw, ""))
		}
		if u.User != nil || u.RawQuery != "" {
			return fmt.Errorf("heroku: base URL %s://%s must not carry credentials or a query", u.Scheme, u.Host)
		}
		if !netguard.Allowed(u) {
			return fmt.Errorf("heroku: base URL %s://%s must use https (plain http only on loopback)", u.Scheme, u.Host)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.PlatformURL == "" {
		o.PlatformURL = defaultPlatformURL
	}
	if o.DataURL == "" {
		o.DataURL = defaultDataURL
	}
	o.PlatformURL = strings.TrimRight(o.PlatformURL, "/")
	o.DataURL = strings.TrimRight(o.DataURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: defaultTransport()}
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
	o.MaxPollInterval = max(o.MaxPollInterval, o.PollInterval)
	if o.RetryBudget <= 0 {
		o.RetryBudget = 2 * time.Minute
	}
	return o
}

// defaultTransport bounds each step of a request; the whole call is bounded by its context,
// since a poll and a listing of hundreds of transfers want different limits.
func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          10,
	}
}

// Client is a Heroku API client. It is safe for concurrent use.
type Client struct {
	o        Options
	platform *hk.Service // Accept: version=3
	sdk      *hk.Service // Accept: version=3.sdk, with add-on plans and config vars included
	// lists and sdkLists ask for lists as platform and sdk do, following their pages, which
	// heroku-go cannot (lists.go).
	lists, sdkLists lister
	data            *http.Client
	retry           *retryTransport
	// remaining is the account's Platform API tokens left, as the last answer said.
	remaining *atomic.Int64
}

// RateLimitRemaining is the account's Platform API rate-limit tokens left, from the last
// answer's RateLimit-Remaining (Heroku refills about 75 a minute, up to 4,500); ok is false
// before any answer said.
func (c *Client) RateLimitRemaining() (n int, ok bool) {
	v := c.remaining.Load()
	return int(v), v >= 0
}

// lowRemaining: below this many tokens left, Pace slows polls in proportion (someone else is
// spending the account's budget too).
const lowRemaining = 1500

// Pace stretches the wait before a poll when the account's Platform API budget runs low
// (RateLimit-Remaining below 1,500): up to ten times, in proportion to what is left.
func (c *Client) Pace(d time.Duration) time.Duration {
	if n, ok := c.RateLimitRemaining(); ok && n < lowRemaining {
		return d * time.Duration(min(10, lowRemaining/max(n, 1)))
	}
	return d
}

// New returns a Client. Call Options.Validate first: a client built from options that fail it
// refuses every request (the key never travels in clear).
func New(o Options) *Client {
	o = o.withDefaults()
	base := o.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	allowed := map[string]bool{}
	if o.Validate() == nil {
		for _, raw := range []string{o.PlatformURL, o.DataURL} {
			u, _ := url.Parse(raw)
			allowed[u.Scheme+"://"+u.Host] = true
		}
	}
	remaining := &atomic.Int64{}
	remaining.Store(-1)
	retry := &retryTransport{next: &answerTransport{next: &guardTransport{next: &stall.Transport{Next: base, Options: o.Stall}, allowed: allowed}}, budget: o.RetryBudget, base: time.Second, cap: 32 * time.Second}
	platformHTTP := func(extra http.Header) *http.Client {
		return &http.Client{Transport: &hk.Transport{
			BearerToken:       o.APIKey,
			UserAgent:         o.UserAgent,
			AdditionalHeaders: extra,
			Transport:         &errorTransport{next: retry, key: o.APIKey, remaining: remaining},
		}}
	}
	service := func(extra http.Header) *hk.Service {
		s := hk.NewService(platformHTTP(extra))
		s.URL = o.PlatformURL
		return s
	}
	sdkHeaders := http.Header{
		"Accept":           {"application/vnd.heroku+json; version=3.sdk"},
		"Accept-Inclusion": {"addon:plan,config_vars"},
	}
	platform, sdk := service(nil), service(sdkHeaders)
	return &Client{
		o:         o,
		platform:  platform,
		sdk:       sdk,
		lists:     lister{svc: platform, http: platformHTTP(nil)},
		sdkLists:  lister{svc: sdk, http: platformHTTP(sdkHeaders)},
		data:      &http.Client{Transport: retry},
		retry:     retry,
		remaining: remaining,
	}
}

// dataCall calls the Data API: method path with a JSON body (in, nil: none) and the JSON answer
// decoded into out (nil: discarded).
func (c *Client) dataCall(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	} else if method == http.MethodPost {
		body = bytes.NewReader(nil) // Content-Length: 0, as the CLI sends
	}
	if out == nil {
		ctx = emptyOK(ctx)
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
	resp, err := c.data.Do(req)
	if err != nil {
		err = scrub.StripURL(err)
		var bad *answerError
		if errors.As(err, &bad) {
			return err // it names the request already
		}
		return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(req, resp, c.o.APIKey)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: malformed answer from the Data API (%s): %w", method, req.URL.Path, resp.Status, err)
	}
	return nil
}

// platformErr strips the URL from an error of heroku-go's (its calls go through net/http).
func platformErr(err error) error {
	if err == nil {
		return nil
	}
	return scrub.StripURL(err)
}
