package coordinator

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// logs follows the whole app's log through one log session for the run, whatever the number
// of children: a session costs a Platform API call, and logplex ends streams (docs/heroku-dynos.md).
// An ended stream, or one silent for longer than Silence (a read deadline), is opened again
// asking for Replay lines, so that what was written meanwhile is read from the replay; lines
// read twice are harmless (a child's lines say the same thing twice). Each line goes to the
// dyno that wrote it; the lines of a dyno not followed yet (its start's answer has not come
// back) wait for it, a few per dyno.
type logs struct {
	c     *Coordinator
	log   zerolog.Logger
	since time.Time // lines older than the run are another run's

	mu      sync.Mutex
	subs    map[string]sub
	pending map[string][]heroku.LogLine
}

type sub struct {
	lines chan heroku.LogLine
	done  chan struct{} // closed when the dyno is no longer followed
}

// Bounds of the lines kept for dynos not followed yet.
const (
	pendingPerDyno = 20
	pendingDynos   = 500
)

// clockSkew allows for the difference between this dyno's clock and the ones stamping the log.
const clockSkew = 10 * time.Second

func (c *Coordinator) newLogs(log zerolog.Logger) *logs {
	return &logs{c: c, log: log, since: time.Now().Add(-clockSkew), subs: map[string]sub{}, pending: map[string][]heroku.LogLine{}}
}

// follow delivers the dyno's lines (from sent on) until stop is called.
func (l *logs) follow(dyno string, sent time.Time) (lines <-chan heroku.LogLine, stop func()) {
	s := sub{lines: make(chan heroku.LogLine, 256), done: make(chan struct{})}
	l.mu.Lock()
	for _, line := range l.pending[dyno] {
		// A replay can hold an earlier dyno's lines under the same name.
		if line.At.IsZero() || !line.At.Before(sent.Add(-clockSkew)) {
			s.lines <- line // pendingPerDyno fit
		}
	}
	delete(l.pending, dyno)
	l.subs[dyno] = s
	l.mu.Unlock()
	return s.lines, func() {
		l.mu.Lock()
		delete(l.subs, dyno)
		l.mu.Unlock()
		close(s.done)
	}
}

// run reads the app's log until ctx ends.
func (l *logs) run(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if l.c.pace.wait(ctx, 1) != nil {
			return
		}
		s, err := l.c.API.LogSession(ctx, l.c.App, heroku.LogOptions{Lines: l.c.replay(), Platform: true})
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn().Err(err).Msg("cannot open the app's log session (trying again)")
				if heroku.RetryAfter(err) > 0 {
					l.c.pace.hold(heroku.RetryAfter(err))
				}
			}
			if backoff.Sleep(ctx, backoff.Delay(l.c.retryBase(), l.c.retryCap(), attempt)) != nil {
				return
			}
			continue
		}
		attempt = 0
		l.read(ctx, s)
	}
}

// read dispatches a stream's lines until it ends, breaks, or stays silent past Silence.
func (l *logs) read(ctx context.Context, s *heroku.LogStream) {
	lines := make(chan heroku.LogLine)
	ended := make(chan error, 1)
	go func() {
		for {
			line, err := s.NextLine()
			if err != nil {
				ended <- err
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer s.Close() // unblocks the reader
	silence := time.NewTimer(l.c.silence())
	defer silence.Stop()
	for {
		select {
		case line := <-lines:
			silence.Reset(l.c.silence())
			l.dispatch(ctx, line)
		case err := <-ended:
			if err != io.EOF && ctx.Err() == nil {
				l.log.Debug().Err(err).Msg("the app's log stream broke (opening another)")
			}
			return
		case <-silence.C:
			return // a stream can stall without ending: open another, with its replay
		case <-ctx.Done():
			return
		}
	}
}

func (l *logs) dispatch(ctx context.Context, line heroku.LogLine) {
	if !line.At.IsZero() && line.At.Before(l.since) {
		return
	}
	l.mu.Lock()
	s, ok := l.subs[line.Dyno]
	if !ok {
		if strings.HasPrefix(line.Dyno, "run.") {
			if len(l.pending) >= pendingDynos {
				clear(l.pending)
			}
			p := append(l.pending[line.Dyno], line)
			l.pending[line.Dyno] = p[max(0, len(p)-pendingPerDyno):]
		}
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	select {
	case s.lines <- line:
	case <-s.done:
	case <-ctx.Done():
	}
}

// exitStatus reads Heroku's own line that a dyno's process ended: "Process exited with status 0".
func exitStatus(line heroku.LogLine) (int, bool) {
	if line.Source != "heroku" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line.Text), "Process exited with status "))
	return n, err == nil && strings.HasPrefix(line.Text, "Process exited with status ")
}
