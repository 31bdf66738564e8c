// Package fetch downloads a backup from its pre-signed URL: concurrent Range requests, yielded
// in order, resumed where a connection broke, with the URL renewed when it expires. The URL is a
// secret: errors name its host only.
package fetch

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// CheckURL accepts https URLs, and http only towards loopback addresses (tests, local simulators).
func CheckURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err == nil {
		err = netguard.Check(u)
	}
	switch {
	case err == nil:
		return u, nil
	case errors.Is(err, netguard.ErrPlainHTTP):
		return nil, fmt.Errorf("fetch: refusing plain http to %s: only https is allowed outside loopback", u.Host)
	case errors.Is(err, netguard.ErrScheme):
		return nil, fmt.Errorf("fetch: refusing URL scheme %q for %s", u.Scheme, u.Host)
	}
	return nil, errors.New("fetch: the download URL is not an absolute URL")
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
