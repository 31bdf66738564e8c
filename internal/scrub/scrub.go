// Package scrub is the one rule for keeping secrets out of logs, errors, configuration messages
// and notifications. It removes the values registered as secret (API keys, AWS secret keys,
// signed URLs, database URLs) and, by their shape, what is secret whatever its value: the query
// string of an http(s) URL (a signed URL's signature), X-Amz-* signing parameters, and the
// password of any URL.
package scrub

import (
	"errors"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// MinSecretLen is the shortest value that is scrubbed: shorter ones would mangle ordinary words,
// and no real key is that short.
const MinSecretLen = 6

var (
	// A signed URL's signature, credential, token and their companions, also outside a URL.
	amzParamRE = regexp.MustCompile(`(?i)(X-Amz-[A-Za-z-]+=)[^&\s"'<>\\]+`)
	// The query string of an http(s) URL: signed URLs carry their secret there. A backslash ends
	// it too: inside JSON a URL ends at an escaped quote, which must stay whole.
	urlQueryRE = regexp.MustCompile(`(?i)(https?://[^\s"'<>?\\]+)\?[^\s"'<>\\]*`)
	// The password of a URL of any scheme: postgres://user:password@host.
	urlPasswordRE = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^\s"'<>/@:]*):[^\s"'<>/@]*@`)
	// A database URL's password may hold characters other URLs would escape, "/" among them.
	pgPasswordRE = regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:/@\s"]+:)[^@\s"]+@`)
)

// Redactor scrubs the secrets registered with Add, and the patterns, from text. The zero value
// is ready to use; a nil *Redactor applies the patterns only. It is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// New returns a Redactor that knows secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers secret values; values shorter than MinSecretLen (and empty ones) are ignored.
// Spaces around a value are ignored too: a pasted secret often has them.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		for _, v := range []string{s, strings.TrimSpace(s)} {
			if len(v) >= MinSecretLen && !contains(r.secrets, v) {
				r.secrets = append(r.secrets, v)
			}
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Scrub returns s with every secret replaced by Mask.
func (r *Redactor) Scrub(s string) string {
	s = r.values(s)
	s = amzParamRE.ReplaceAllString(s, "${1}"+Mask)
	s = urlQueryRE.ReplaceAllString(s, "${1}?"+Mask)
	s = pgPasswordRE.ReplaceAllString(s, "${1}"+Mask+"@")
	return urlPasswordRE.ReplaceAllString(s, "${1}:"+Mask+"@")
}

// values replaces the registered secrets alone.
func (r *Redactor) values(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// Wrap returns a writer that scrubs each write before passing it on. Each write is scrubbed on
// its own, so it suits writers fed whole lines or events (zerolog writes one event per call).
func (r *Redactor) Wrap(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if _, err := io.WriteString(w, r.Scrub(string(p))); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// String scrubs s of secrets and of the patterns, for a one-off message.
func String(s string, secrets ...string) string {
	return New(secrets...).Scrub(s)
}

// Values scrubs s of the given secret values only, not of the shapes: for text pgoffsite writes
// itself around a value, such as a fix naming the form of a URL (postgres://user:password@host),
// which the shape rules would turn into postgres://user:[REDACTED]@host. A value from outside
// in such text must have been scrubbed whole (String) before it was put in.
func Values(s string, secrets ...string) string {
	return New(secrets...).values(s)
}

// StripURL takes the URL (and the method before it) out of err's message where a *url.Error in it names one (net/http
// names every URL it fails on, signed query strings included), keeping the rest of the message
// and, for errors.Is and errors.As, err itself. Nil stays nil.
func StripURL(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	msg := strings.Replace(err.Error(), ue.Error(), ue.Err.Error(), 1)
	return &urlStripped{msg: msg, err: err}
}

type urlStripped struct {
	msg string
	err error
}

func (e *urlStripped) Error() string { return e.msg }
func (e *urlStripped) Unwrap() error { return e.err }
