// Package logging builds the program's zerolog logger: logfmt lines (what Heroku's log viewer
// and drains read) or JSON, behind a writer that scrubs secrets as a last line of defence.
package logging

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// New returns a logger writing to w in format ("logfmt" or "json") at level. It may be used
// from many goroutines at once (the job's downloads log from theirs): each event is written
// whole, one at a time, whatever w is.
func New(w io.Writer, format, level string, red *Redactor) zerolog.Logger {
	w = zerolog.SyncWriter(w)
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

// Redactor scrubs secrets from everything the logger writes: the one scrubber of package scrub.
type Redactor = scrub.Redactor
