// Package logging builds the program's zerolog logger: logfmt lines (what Heroku's log viewer
// and drains read) or JSON, behind a writer that scrubs secrets as a last line of defence.
package logging

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w in format ("logfmt" or "json") at level.
func New(w io.Writer, format, level string, red *Redactor) zerolog.Logger {
	if red != nil {
		w = red.Wrap(w)
	}
	if format != "json" {
		w = logfmtWriter(w)
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339
	zerolog.DurationFieldUnit = time.Second
	zerolog.DurationFieldInteger = false
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func logfmtWriter(w io.Writer) io.Writer {
	return zerolog.ConsoleWriter{
		Out:        w,
		NoColor:    true,
		TimeFormat: time.RFC3339,
		PartsOrder: []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, zerolog.MessageFieldName},
		FormatTimestamp: func(i any) string {
			return "time=" + fmt.Sprint(i)
		},
		FormatLevel: func(i any) string {
			return "level=" + fmt.Sprint(i)
		},
		FormatMessage: func(i any) string {
			if i == nil {
				return ""
			}
			return "msg=" + Quote(fmt.Sprint(i))
		},
		FormatFieldName: func(i any) string { return fmt.Sprint(i) + "=" },
		// ConsoleWriter has already quoted the string values that need it.
		FormatFieldValue:    fieldValue,
		FormatErrFieldName:  func(i any) string { return fmt.Sprint(i) + "=" },
		FormatErrFieldValue: fieldValue,
	}
}

// fieldValue prints a value ConsoleWriter hands over: a string it has quoted when needed, or the
// JSON bytes of any other value (a bool, a number).
func fieldValue(i any) string {
	if b, ok := i.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(i)
}

// Quote returns s as a logfmt value: bare when it is safe, quoted otherwise.
func Quote(s string) string {
	if s == "" {
		return `""`
	}
	if strings.ContainsAny(s, " \t\r\n\"=\\") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return s
}

// Redactor replaces secrets in everything written through it. Known values are registered with
// Add; signed-URL signatures and passwords in database URLs are caught by pattern too.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

var patterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"]+`),
	regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:/@\s"]+:)[^@\s"]+@`),
}

// Add registers secret values (short values are ignored: redacting them would mangle logs).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 6 {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Scrub returns s with every secret replaced.
func (r *Redactor) Scrub(s string) string {
	r.mu.RLock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	r.mu.RUnlock()
	s = patterns[0].ReplaceAllString(s, "${1}[REDACTED]")
	return patterns[1].ReplaceAllString(s, "${1}[REDACTED]@")
}

// Wrap returns a writer that scrubs each write (zerolog writes one event per call).
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
