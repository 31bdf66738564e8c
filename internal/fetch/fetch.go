// Package fetch downloads a backup from its pre-signed URL.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Client downloads pre-signed URLs. The zero value uses http.DefaultTransport.
type Client struct {
	HTTP *http.Client
}

// Open starts the download of rawURL and returns the body and its exact length. The URL is a
// secret: errors name its host only. It sends a plain GET — the URL is signed for GET alone (a
// HEAD fails) and an Authorization header makes S3 refuse it.
func (c *Client) Open(ctx context.Context, rawURL string) (io.ReadCloser, int64, error) {
	u, err := CheckURL(rawURL)
	if err != nil {
		return nil, 0, err
	}
	host := u.Host
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch: GET %s: bad request", host)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch: GET %s: %w", host, Unwrap(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		code := s3ErrorCode(resp.Body)
		return nil, 0, fmt.Errorf("fetch: GET %s: %s%s", host, resp.Status, code)
	}
	if resp.ContentLength < 0 {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch: GET %s: no Content-Length in the answer: the archive's completeness could not be checked", host)
	}
	return &body{rc: resp.Body, host: host}, resp.ContentLength, nil
}

// CheckURL accepts https URLs, and http only towards loopback addresses (tests, local simulators).
func CheckURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("fetch: the download URL is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("fetch: refusing plain http to %s: only https is allowed outside loopback", u.Host)
		}
	default:
		return nil, fmt.Errorf("fetch: refusing URL scheme %q for %s", u.Scheme, u.Host)
	}
	return u, nil
}

// IsLoopback reports whether host (without port) is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Unwrap strips the URL that *url.Error carries (it holds the signed query string) and keeps the cause.
func Unwrap(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// s3ErrorCode extracts <Code> from an S3 XML error body, e.g. " (AccessDenied: Request has expired)".
func s3ErrorCode(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	code := between(string(b), "<Code>", "</Code>")
	if code == "" {
		return ""
	}
	if msg := between(string(b), "<Message>", "</Message>"); msg != "" && len(msg) < 200 {
		return fmt.Sprintf(" (%s: %s)", code, msg)
	}
	return " (" + code + ")"
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// body names the host in read errors, never the URL.
type body struct {
	rc   io.ReadCloser
	host string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("fetch: reading from %s: %w", b.host, Unwrap(err))
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }
