package herokusim

// Log sessions, as logplex serves them (docs/heroku-dynos.md, "Log sessions are logplex's"):
// every line of every dyno of an app goes to the app's one log, which keeps the newest 1,500
// lines. A session replays the last `lines` of that whole log (100 when not given, at most
// 1,500) and only then filters them by dyno and source, so a dyno's line scrolls out of reach
// when the app's other dynos write enough after it; a tail session then streams new lines until
// the stream ends (SetLogStreamLife), and the client opens another.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Logplex's limits: a session replays 100 lines unless told, and the app's log keeps 1,500.
const (
	logplexDefaultLines = 100
	logplexMaxLines     = 1500
)

// maxLogLine is the longest line Heroku's logs carry: a dyno's longer lines are split.
const maxLogLine = 10000

// appLogLine is one line of an app's log.
type appLogLine struct {
	at     time.Time
	source string // "app" or "heroku"
	dyno   string // run.1234
	text   string
}

// appLog is an app's log, guarded by Sim.mu: the newest logplexMaxLines lines, numbered.
type appLog struct {
	lines   []appLogLine
	first   int           // the number of lines[0]; lines before it scrolled out
	changed chan struct{} // closed and replaced on every new line
}

type logSession struct {
	app, dyno, source string
	tail              bool
	lines             int
}

func (s *Sim) appLogLocked(a *app) *appLog {
	dy := s.dynosLocked()
	l := dy.logs[a.name]
	if l == nil {
		l = &appLog{changed: make(chan struct{})}
		dy.logs[a.name] = l
	}
	return l
}

// logLocked writes a line of the dyno's to its own record and to its app's log.
func (d *dyno) logLocked(source, text string) {
	l := appLogLine{at: time.Now().UTC(), source: source, dyno: d.rec.Name, text: text}
	d.lines = append(d.lines, l)
	d.log.lines = append(d.log.lines, l)
	if over := len(d.log.lines) - logplexMaxLines; over > 0 {
		d.log.lines = append([]appLogLine(nil), d.log.lines[over:]...)
		d.log.first += over
	}
	close(d.log.changed)
	d.log.changed = make(chan struct{})
}

// SetLogStreamLife ends every log stream d after it opened (0: a stream lasts until its client
// leaves). Logplex ends streams; when, Heroku does not document: a client must open another.
func (s *Sim) SetLogStreamLife(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().streamLife = d
}

// SetLogReplayLimit caps the lines a new session replays below logplex's 1,500, whatever the
// client asks for: a test of an app whose log scrolls fast.
func (s *Sim) SetLogReplayLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().replayMax = min(max(n, 1), logplexMaxLines)
}

func (s *Sim) logSessionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /apps/{app}/log-sessions", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var body struct {
			Dyno   string `json:"dyno"`
			Source string `json:"source"`
			Tail   bool   `json:"tail"`
			Lines  *int   `json:"lines"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err != io.EOF {
			herokuError(w, 400, "bad_request", "Invalid JSON.")
			return
		}
		lines := logplexDefaultLines
		if body.Lines != nil {
			lines = *body.Lines
		}
		lines = min(max(lines, 0), s.dynosLocked().replayMax)
		id := newID()
		s.dynosLocked().sessions[id] = logSession{app: a.name, dyno: body.Dyno, source: body.Source, tail: body.Tail, lines: lines}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		now := rfc3339(s.now())
		writeJSON(w, 201, map[string]any{"id": id, "created_at": now, "updated_at": now,
			"logplex_url": fmt.Sprintf("%s://%s%s%s?srv=%s", scheme, r.Host, logplexPrefix, id, hex16(s.secret))})
	}))
}

// logplexPrefix is where the simulator serves log sessions; like logplex, it takes no API key:
// the session's URL is the credential.
const logplexPrefix = "/logplex/sessions/"

func hex16(b []byte) string { return fmt.Sprintf("%x", b[:8]) }

// serveLogSession streams a session's lines as server-sent events, each a Heroku log line
// ("2026-12-01T12:00:00.000000+00:00 app[run.1234]: text"): first the replay, then, for a tail
// session, new lines until the stream's life ends or the client leaves. A tail session stays
// open after its dyno ended, as logplex's do: the client decides when it has seen enough.
func (s *Sim) serveLogSession(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, logplexPrefix)
	s.mu.Lock()
	sess, ok := s.dynosLocked().sessions[id]
	var log *appLog
	var next int
	var end <-chan time.Time
	if a := s.apps[sess.app]; ok && a != nil {
		log = s.appLogLocked(a)
		next = log.first + max(0, len(log.lines)-sess.lines) // the replay: the app's last lines
		if life := s.dynosLocked().streamLife; life > 0 {
			end = time.After(life)
		}
	}
	s.mu.Unlock()
	if log == nil || r.URL.Query().Get("srv") != hex16(s.secret) {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	fl, _ := w.(http.Flusher)
	n := 0
	for {
		s.mu.Lock()
		next = max(next, log.first) // a reader too slow for the log loses what scrolled out
		lines := append([]appLogLine(nil), log.lines[next-log.first:]...)
		next = log.first + len(log.lines)
		changed := log.changed
		s.mu.Unlock()
		for _, l := range lines {
			// Filtered after the replay was cut: a dyno's lines compete with the whole app's.
			// A process type ("run") names all its dynos, as `heroku logs --dyno` does.
			if (sess.source != "" && sess.source != l.source) || (sess.dyno != "" && sess.dyno != l.dyno && !strings.HasPrefix(l.dyno, sess.dyno+".")) {
				continue
			}
			n++
			fmt.Fprintf(w, "id: %d\ndata: %s %s[%s]: %s\n\n", n, l.at.Format("2006-01-02T15:04:05.000000-07:00"), l.source, l.dyno, l.text)
		}
		if fl != nil {
			fl.Flush()
		}
		if !sess.tail {
			return
		}
		select {
		case <-changed:
		case <-end:
			return
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			fmt.Fprint(w, ": keep-alive\n\n") // logplex sends comments to keep the stream open
		}
	}
}
