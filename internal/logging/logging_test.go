package logging

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogfmtLine(t *testing.T) {
	var b bytes.Buffer
	red := &Redactor{}
	red.Add("hrku-secret-123456")
	log := New(&b, "logfmt", "info", red)
	log.Info().Str("app", "shop prod").Bool("running", true).Int64("bytes", 42).Dur("duration", 1500*time.Millisecond).
		Err(errors.New("heroku: 401 for key hrku-secret-123456")).Str("url", "https://b.s3.amazonaws.com/x?X-Amz-Signature=abc&X-Amz-Credential=AKIA/x").
		Str("dsn", "postgres://u:pw@h:5432/d").Msg("target archived")
	log.Debug().Msg("hidden at info")
	line := b.String()
	for _, want := range []string{"level=info", `msg="target archived"`, `app="shop prod"`, "running=true", "bytes=42", "duration=1.5",
		`error="heroku: 401 for key [REDACTED]"`, "url=https://b.s3.amazonaws.com/x?[REDACTED]", "postgres://u:[REDACTED]@h"} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %s:\n%s", want, line)
		}
	}
	for _, leak := range []string{"hrku-secret-123456", "abc", "AKIA", ":pw@", "hidden"} {
		if strings.Contains(line, leak) {
			t.Errorf("line contains %q:\n%s", leak, line)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("want one line, got:\n%s", line)
	}
}

func TestJSONFormat(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, "json", "debug", nil)
	l.Debug().Str("app", "a").Msg("hi")
	if !strings.HasPrefix(b.String(), `{"level":"debug","app":"a"`) {
		t.Errorf("json line: %s", b.String())
	}
}

// Goroutines logging at once through a writer that is not safe for concurrent use (a
// bytes.Buffer, as tests and pipes give) still get whole lines: run with -race.
func TestConcurrentEventsAreWholeLines(t *testing.T) {
	for _, format := range []string{"logfmt", "json"} {
		var b bytes.Buffer
		log := New(&b, format, "info", &Redactor{})
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 20 {
					log.Info().Int("g", i).Int("n", j).Msg("renewing the backup's download URL")
				}
			}()
		}
		wg.Wait()
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(lines) != 400 {
			t.Fatalf("%s: %d lines, want 400", format, len(lines))
		}
		for _, l := range lines {
			if strings.Count(l, "renewing") != 1 {
				t.Fatalf("%s: mangled line %q", format, l)
			}
		}
	}
}
