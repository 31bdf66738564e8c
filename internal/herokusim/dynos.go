package herokusim

// One-off dynos and log sessions (heroku-api.md §10; docs/heroku-dynos.md).
//
// POST /apps/{app}/dynos runs the command as a local process: its first word is looked up in
// the executables SetDynoCommand gave (e.g. "pgoffsite" → the binary a test built), its
// environment is the app's config vars (SetConfigVars, and its attachments' _URL vars), then the
// request's env, then DYNO=run.N. The dyno is "starting" until the process has started, "up"
// while it runs; when it exits it is "crashed" (a non-zero status or a signal) or "down" (status
// 0) for a short while, then gone (404), as a finished one-off dyno is on Heroku.
// POST …/actions/stop sends SIGTERM, then SIGKILL after the grace (30 s on Heroku; StopGrace).
// time_to_live ends a dyno the same way. A start while the app runs as many one-off dynos as its
// limit allows (SetDynoLimit; Heroku's by size otherwise) is refused with a 422
// cannot_run_above_limit. Each line a dyno writes goes to its app's log, which log sessions read
// as logplex's do (logplex.go).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DynoRecord is what the simulator knows of one one-off dyno, for tests.
type DynoRecord struct {
	ID, Name, Command, Size string
	TTL                     int // seconds; 0 when not given
	Env                     map[string]string
	State                   string
	ExitCode                int  // -1 while running or when killed by a signal
	Stopped                 bool // a stop action (or its time to live) ended it
	Ended                   bool
}

type dyno struct {
	rec     DynoRecord
	app     *app
	created time.Time
	ended   time.Time
	cmd     *exec.Cmd
	lines   []appLogLine
	log     *appLog // the app's log, which log sessions read (logplex.go)
	stopped bool
}

// dynos is the one-off dyno state of a Sim, guarded by Sim.mu.
type dynos struct {
	byID       map[string]*dyno
	order      []*dyno
	exe        map[string]string
	limit      int
	peak       int
	grace      time.Duration
	linger     time.Duration
	sessions   map[string]logSession
	logs       map[string]*appLog // by app name
	streamLife time.Duration      // how long a log stream lasts; 0: until the client leaves
	replayMax  int                // the most lines a session replays (logplex: 1,500)
	nextNumber int
	lose       int // dyno starts whose answer is lost (a 503 after the dyno started)
	wg         sync.WaitGroup
}

func (s *Sim) dynosLocked() *dynos {
	if s.dy == nil {
		s.dy = &dynos{byID: map[string]*dyno{}, exe: map[string]string{},
			grace: 30 * time.Second, linger: 2 * time.Second, sessions: map[string]logSession{}, nextNumber: 1000,
			logs: map[string]*appLog{}, replayMax: logplexMaxLines}
	}
	return s.dy
}

// SetDynoCommand makes one-off dynos run path when a command's first word is name.
func (s *Sim) SetDynoCommand(name, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().exe[name] = path
}

// SetDynoLimit refuses a one-off dyno start while n one-off dynos of the same app run, the
// coordinator's own included when it runs as one (0: Heroku's limits by the dyno's size, 50
// Basic/Standard, 5 Performance/Private/Shield, 1 Eco, 255 on a Fir app: Dev Center "Dyno
// Scaling and Process Limits"). The limit is per app.
func (s *Sim) SetDynoLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().limit = n
}

// LoseDynoAnswers makes the next n dyno starts start their dyno and then answer 503, as when
// Heroku's answer is lost on the way: a client that simply tries again runs the target twice.
func (s *Sim) LoseDynoAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().lose = n
}

// SetStopGrace is the time between the SIGTERM and the SIGKILL of a stopped dyno (30 s on Heroku).
func (s *Sim) SetStopGrace(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynosLocked().grace = d
}

// MaxConcurrentDynos is the most one-off dynos that ever ran at once.
func (s *Sim) MaxConcurrentDynos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dynosLocked().peak
}

// Dynos lists every one-off dyno started, in order, ended ones included.
func (s *Sim) Dynos() []DynoRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DynoRecord
	for _, d := range s.dynosLocked().order {
		out = append(out, d.rec)
	}
	return out
}

// DynoLog is everything the dyno named name wrote, one line each, for a test's failure message.
func (s *Sim) DynoLog(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, d := range s.dynosLocked().order {
		if d.rec.Name == name {
			for _, l := range d.lines {
				b.WriteString(l.text + "\n")
			}
		}
	}
	return b.String()
}

// KillDyno kills a running dyno's process with SIGKILL (a crash, an R15), as if the platform
// did: no stop request, no grace.
func (s *Sim) KillDyno(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dynosLocked().order {
		if d.rec.Name == name && d.ended.IsZero() && d.cmd != nil && d.cmd.Process != nil {
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			return true
		}
	}
	return false
}

// limitFor is the one-off dyno limit of an app of generation starting a dyno of size.
func (dy *dynos) limitFor(generation, size string) int {
	if dy.limit > 0 {
		return dy.limit
	}
	switch s := strings.ToLower(size); {
	case generation == "fir":
		return 255
	case s == "eco" || s == "free":
		return 1
	case strings.HasPrefix(s, "performance") || strings.HasPrefix(s, "private") || strings.HasPrefix(s, "shield"):
		return 5
	}
	return 50
}

// runningOfLocked counts the app's one-off dynos that have not ended.
func (s *Sim) runningOfLocked(a *app) int {
	n := 0
	for _, d := range s.dynosLocked().order {
		if d.app == a && d.ended.IsZero() {
			n++
		}
	}
	return n
}

func (s *Sim) runningLocked() int {
	n := 0
	for _, d := range s.dynosLocked().order {
		if d.ended.IsZero() {
			n++
		}
	}
	return n
}

func (s *Sim) dynoRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /apps/{app}/dynos", s.withApp(s.createDyno))
	mux.HandleFunc("GET /apps/{app}/dynos", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var out []map[string]any
		for _, d := range s.dynosLocked().order {
			if d.app == a && s.visibleLocked(d) {
				out = append(out, d.json())
			}
		}
		s.writeIDPage(w, r, out, "name")
	}))
	mux.HandleFunc("GET /apps/{app}/dynos/{id}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		d := s.dynoLocked(a, r.PathValue("id"))
		if d == nil || !s.visibleLocked(d) {
			herokuError(w, 404, "not_found", "Couldn't find that process.")
			return
		}
		writeJSON(w, 200, d.json())
	}))
	mux.HandleFunc("POST /apps/{app}/dynos/{id}/actions/stop", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		d := s.dynoLocked(a, r.PathValue("id"))
		if d == nil || !s.visibleLocked(d) {
			herokuError(w, 404, "not_found", "Couldn't find that process.")
			return
		}
		s.stopLocked(d, "Stopping all processes with SIGTERM")
		// The schema's answer is an empty object; which body Heroku sends today is unverified,
		// and the simulator sends none: the harder case for a client.
		w.WriteHeader(http.StatusAccepted)
	}))
	s.logSessionRoutes(mux)
}

func (s *Sim) visibleLocked(d *dyno) bool {
	return d.ended.IsZero() || time.Since(d.ended) < s.dynosLocked().linger
}

func (s *Sim) dynoLocked(a *app, idOrName string) *dyno {
	for _, d := range s.dynosLocked().order {
		if d.app == a && (d.rec.ID == idOrName || d.rec.Name == idOrName) {
			return d
		}
	}
	return nil
}

func (d *dyno) json() map[string]any {
	return map[string]any{"id": d.rec.ID, "name": d.rec.Name, "command": d.rec.Command, "attach_url": nil,
		"size": d.rec.Size, "type": "run", "state": d.rec.State,
		"release": map[string]any{"id": stableID("release-1"), "version": 1},
		"app":     ref(d.app.id, d.app.name), "created_at": rfc3339(d.created), "updated_at": rfc3339(d.created)}
}

func (s *Sim) createDyno(w http.ResponseWriter, r *http.Request, a *app) {
	var body struct {
		Command    string            `json:"command"`
		Attach     *bool             `json:"attach"`
		Env        map[string]string `json:"env"`
		Size       string            `json:"size"`
		Type       string            `json:"type"`
		TimeToLive *int              `json:"time_to_live"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || strings.TrimSpace(body.Command) == "" {
		herokuError(w, 422, "invalid_params", "Command can't be blank.")
		return
	}
	if body.TimeToLive != nil && (*body.TimeToLive <= 0 || *body.TimeToLive > 86400) {
		herokuError(w, 422, "invalid_params", "Time to live must be between 1 and 86400 seconds.")
		return
	}
	if body.Size == "" {
		body.Size = "standard-1X" // heroku-go schema: the default size
	}
	dy := s.dynosLocked()
	if limit := dy.limitFor(s.runtimeLocked(a).generation, body.Size); s.runningOfLocked(a) >= limit {
		herokuError(w, 422, "cannot_run_above_limit",
			fmt.Sprintf("Cannot run more than %d %s size dynos.\n\nRead more: https://devcenter.heroku.com/articles/dyno-size#default-scaling-limits", limit, body.Size))
		return
	}
	words := strings.Fields(body.Command)
	exe, ok := dy.exe[words[0]]
	if !ok {
		exe = words[0]
	}
	dy.nextNumber++
	d := &dyno{app: a, created: s.now(), log: s.appLogLocked(a),
		rec: DynoRecord{ID: newID(), Name: fmt.Sprintf("run.%d", dy.nextNumber), Command: body.Command, Size: body.Size,
			Env: body.Env, State: "starting", ExitCode: -1}}
	if body.TimeToLive != nil {
		d.rec.TTL = *body.TimeToLive
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, at := range s.atts {
		if at.app == a && at.namespace == nil {
			env = append(env, at.name+"_URL="+at.addon.dsn)
		}
	}
	for k, v := range s.runtimeLocked(a).config {
		env = append(env, k+"="+v)
	}
	for k, v := range body.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "DYNO="+d.rec.Name)
	cmd := exec.Command(exe, words[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	d.cmd = cmd
	dy.byID[d.rec.ID] = d
	dy.order = append(dy.order, d)
	dy.peak = max(dy.peak, s.runningLocked())
	d.logLocked("heroku", "Starting process with command `"+body.Command+"`")
	if err := cmd.Start(); err != nil {
		d.logLocked("app", "bash: "+words[0]+": command not found")
		d.rec.State, d.rec.ExitCode, d.ended, d.rec.Ended = "crashed", 127, time.Now(), true
		d.logLocked("heroku", "Process exited with status 127")
	} else {
		d.rec.State = "up"
		d.logLocked("heroku", "State changed from starting to up")
		dy.wg.Add(2)
		// output is closed when every line the process wrote is in the log.
		output := make(chan struct{})
		go func() { // the output, line by line, into the dyno's log
			defer dy.wg.Done()
			defer close(output)
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				s.mu.Lock()
				// Heroku splits a line over 10,000 bytes into lines of 10,000 bytes.
				for text := sc.Text(); ; text = text[maxLogLine:] {
					if len(text) <= maxLogLine {
						d.logLocked("app", text)
						break
					}
					d.logLocked("app", text[:maxLogLine])
				}
				s.mu.Unlock()
			}
			io.Copy(io.Discard, pr)
		}()
		go func() {
			defer dy.wg.Done()
			err := cmd.Wait()
			pw.Close()
			// The exit lines come after the process's last line, as on Heroku, and the dyno
			// is seen to have ended only once they are in the log.
			<-output
			s.mu.Lock()
			defer s.mu.Unlock()
			code := cmd.ProcessState.ExitCode()
			d.rec.ExitCode, d.ended, d.rec.Ended = code, time.Now(), true
			switch {
			case err == nil:
				d.rec.State = "down"
				d.logLocked("heroku", "Process exited with status 0")
			case code >= 0:
				d.rec.State = "crashed"
				d.logLocked("heroku", fmt.Sprintf("Process exited with status %d", code))
			default:
				d.rec.State = "crashed"
				d.logLocked("heroku", "Process exited with status 137")
			}
			d.logLocked("heroku", "State changed from up to "+map[bool]string{true: "complete", false: "crashed"}[err == nil])
		}()
		if d.rec.TTL > 0 {
			time.AfterFunc(time.Duration(d.rec.TTL)*time.Second, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.stopLocked(d, "Stopping process: time to live reached")
			})
		}
	}
	if dy.lose > 0 {
		dy.lose--
		herokuError(w, 503, "unavailable", "The service is temporarily unavailable. Please try again later.")
		return
	}
	writeJSON(w, 201, d.json())
}

// stopLocked sends SIGTERM to a running dyno, and SIGKILL after the grace.
func (s *Sim) stopLocked(d *dyno, why string) {
	if !d.ended.IsZero() || d.stopped || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.stopped, d.rec.Stopped = true, true
	d.logLocked("heroku", why)
	pid := d.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	time.AfterFunc(s.dynosLocked().grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if d.ended.IsZero() {
			d.logLocked("heroku", "Error R12 (Exit timeout) -> At least one process failed to exit within 30 seconds of SIGTERM")
			d.logLocked("heroku", "Stopping remaining processes with SIGKILL")
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// closeDynos kills what still runs when the Sim closes, and waits for the processes.
func (s *Sim) closeDynos() {
	s.mu.Lock()
	if s.dy == nil {
		s.mu.Unlock()
		return
	}
	for _, d := range s.dy.order {
		if d.ended.IsZero() && d.cmd != nil && d.cmd.Process != nil {
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	s.mu.Unlock()
	s.dy.wg.Wait()
}
