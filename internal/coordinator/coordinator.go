// Package coordinator spreads a backup run over detached one-off dynos of the app itself
// (BACKUP_FANOUT): one dyno per target, at most N at once, all followed through one session of
// the app's log (logs.go) until each child's result line (ResultLine, docs/fanout-result.md) and
// Heroku's line that its process exited; a dyno's state is read only when its log stays silent.
// Every Platform API call, the children's included, is paced within the run's share of the
// account's rate limit (budget.go). A dyno that vanished without a result (crashed, killed at
// its time to live, an R14/R15) is started once more, and the uploads it named as open
// (UploadLine) are aborted; one that exited 0 with its result lost in the logs is a success, not
// started again. Heroku's refusals to start a dyno (the app's one-off dyno limit, a release not
// visible yet, the rate limit) are waited out with back-off: they never fail a target, and never
// make more than N dynos run. When the run is cancelled (SIGTERM) every running dyno is stopped
// and awaited, within bounds.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// API is the part of the Platform API the coordinator uses.
type API interface {
	RunDetached(ctx context.Context, app string, o heroku.RunOptions) (heroku.Dyno, error)
	DynoInfo(ctx context.Context, app, id string) (heroku.Dyno, error)
	DynoList(ctx context.Context, app string) ([]heroku.Dyno, error)
	StopDyno(ctx context.Context, app, id string) error
	LogSession(ctx context.Context, app string, o heroku.LogOptions) (*heroku.LogStream, error)
}

// Generations tells an app's generation ("cedar", "fir"): a Fir app cannot host a fan-out
// (heroku.FanoutHost says why).
type Generations interface {
	AppGeneration(ctx context.Context, app string) (string, error)
}

// Aborter aborts a multipart upload a child named as open (UploadLine); ok is false when the upload is not
// in its bucket.
type Aborter interface {
	AbortUpload(ctx context.Context, location, uploadID string) (ok bool, err error)
}

// Coordinator runs targets in one-off dynos.
type Coordinator struct {
	API API
	App string // the app whose dynos run the children: the coordinator's own
	// Command is the child's command line for a target.
	Command func(archive.Target) string
	Size    string
	TTL     time.Duration     // each dyno's time to live
	Env     map[string]string // added to the children's environment (PGOFFSITE_CHILD=1)
	N       int               // dynos at once
	Log     zerolog.Logger
	Abort   []Aborter

	pace *pacer // set by Run
	logs *logs
	// TTLFix says what sets TTL and how to give a target more time, for a dyno stopped at it.
	TTLFix string
	Rate   RateLimit   // the account's budget left; nil: unknown
	Hosts  Generations // nil: the app's generation is not checked

	CallsPerMinute int           // the run's Platform API budget; default CallsPerMinute
	Poll           time.Duration // how long a dyno's log may stay silent before its state is read; default 2 min
	Silence        time.Duration // how long the app's log stream may stay silent before it is opened again; default 60 s
	Replay         int           // lines a reopened log session replays; default 1,500 (logplex's most)
	Drain          time.Duration // how long log lines may lag a dyno's end; default 10 s
	RetryBase      time.Duration // first wait after a refusal; default 2 s
	RetryCap       time.Duration // longest wait after a refusal; default 30 s
	StopWithin     time.Duration // how long stopped dynos are awaited after a cancel; default 20 s
}

// TimeToLive is a child dyno's time to live for a capture timeout (BACKUP_CAPTURE_TIMEOUT): the
// capture's and as long again for the transfer, within Heroku's 24 hours.
func TimeToLive(captureTimeout time.Duration) time.Duration {
	return min(24*time.Hour, 2*captureTimeout)
}

// TimeToLiveFix says, for a child stopped at its time to live, what set it and how to give more.
func TimeToLiveFix(captureTimeout time.Duration) string {
	if TimeToLive(captureTimeout) < 24*time.Hour {
		return fmt.Sprintf("the time to live is twice BACKUP_CAPTURE_TIMEOUT (%s): raise BACKUP_CAPTURE_TIMEOUT to give each target more time, up to 12h (a one-off dyno lives at most 24 h)", captureTimeout)
	}
	return fmt.Sprintf("the time to live is twice BACKUP_CAPTURE_TIMEOUT (%s), capped at 24 h, the longest Heroku lets a one-off dyno live: the archive takes longer than a dyno can run; the log's rates say whether the download or the upload is slow", captureTimeout)
}

const attempts = 2 // a dyno that vanished without a result is started once more

// Run runs every target in a dyno, N at once; the results are in the targets' order.
func (c *Coordinator) Run(ctx context.Context, targets []archive.Target) []archive.Result {
	results := make([]archive.Result, len(targets))
	if err := c.refuseFir(ctx); err != nil {
		for i, t := range targets {
			results[i] = archive.Result{Target: t, Err: err}
		}
		return results
	}
	c.pace = newPacer(c.Rate, orDefault(c.CallsPerMinute, CallsPerMinute))
	// The log is read on a context of its own: after a cancel, the children's last lines (their
	// aborted uploads) still matter.
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer lcancel()
	c.logs = c.newLogs(c.Log)
	go c.logs.run(lctx)

	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(c.N, len(targets))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = c.target(ctx, targets[i])
			}
		}()
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// refuseFir refuses a Fir-generation host app, as heroku.FanoutHost says.
func (c *Coordinator) refuseFir(ctx context.Context) error {
	if c.Hosts == nil {
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	gen, err := c.Hosts.AppGeneration(gctx, c.App)
	if err != nil {
		c.Log.Warn().Err(err).Msg("cannot tell the app's generation (Cedar or Fir): starting the dynos all the same")
		return nil
	}
	if err := heroku.FanoutHost(heroku.AppInfo{Name: c.App, Generation: gen}); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	return nil
}

// outcome is how one dyno ended.
type outcome struct {
	result *archive.Result // its result line, when it wrote one
	dyno   string
	tail   []string // its last lines, for the report of a dyno that vanished
	err    error    // why there is no result
	atTTL  bool     // it ended at or after its time to live: Heroku stopped it
}

func (c *Coordinator) target(ctx context.Context, t archive.Target) archive.Result {
	start := time.Now()
	log := c.Log.With().Str("app", t.App).Str("database", t.Database).Logger()
	var o outcome
	for attempt := 1; attempt <= attempts; attempt++ {
		o = c.attempt(ctx, log, t)
		if o.result != nil {
			r := *o.result
			if r.Err != nil && o.atTTL {
				// The child reported its own interruption: the SIGTERM of its time to live.
				r.Err = fmt.Errorf("the dyno was stopped at its time to live (%s) and reported: %w; %s", c.ttl(), r.Err, c.TTLFix)
			}
			r.Duration = time.Since(start)
			return r
		}
		if ctx.Err() != nil {
			break
		}
		ev := log.Warn().Str("dyno", o.dyno).Err(o.err).Strs("last_lines", o.tail)
		if attempt < attempts {
			ev.Msg("the dyno ended without a result: starting it once more")
		} else {
			ev.Msg("the dyno ended without a result again")
		}
	}
	err := o.err
	if ctx.Err() != nil {
		err = fmt.Errorf("the run was interrupted: %w", ctx.Err())
	}
	msg := fmt.Sprintf("coordinator: archive %s in a one-off dyno", t)
	if o.dyno != "" {
		msg += " (" + o.dyno + ")"
	}
	if len(o.tail) > 0 {
		err = fmt.Errorf("%w; its last line: %s", err, o.tail[len(o.tail)-1])
	}
	return archive.Result{Target: t, Duration: time.Since(start), Err: fmt.Errorf("%s: %w", msg, err)}
}

// attempt runs the target in one dyno and follows it to its end.
func (c *Coordinator) attempt(ctx context.Context, log zerolog.Logger, t archive.Target) outcome {
	d, sent, err := c.start(ctx, log, t)
	if err != nil {
		return outcome{err: err}
	}
	o := outcome{dyno: d.Name}
	log = log.With().Str("dyno", d.Name).Logger()
	log.Info().Msg("dyno started")

	lines, unfollow := c.logs.follow(d.Name, sent)
	defer unfollow()
	uploads := map[string]string{} // upload ID → location, while open
	tick := time.NewTicker(c.tick())
	defer tick.Stop()
	var ended, stopAt, heard, polled time.Time
	heard = time.Now()
	exit := -1 // the process's exit status, from Heroku's line; -1 unknown
	done := ctx.Done()
	limit := time.Now().Add(c.TTL + 5*time.Minute) // Heroku ends the dyno at its TTL; a way out if the API never says so
	for {
		select {
		case line := <-lines:
			heard = time.Now()
			if code, ok := exitStatus(line); ok {
				exit = code
				if ended.IsZero() {
					ended = time.Now()
				}
				continue
			}
			if line.Source == "heroku" {
				continue
			}
			text := strings.TrimSpace(line.Text)
			if len(o.tail) == 0 || o.tail[len(o.tail)-1] != text {
				o.tail = append(o.tail, text)
				if len(o.tail) > 5 {
					o.tail = o.tail[1:]
				}
			}
			l, ok := parseLine(t, text)
			switch {
			case !ok:
			case l.result != nil:
				o.result = l.result
			case l.upload != nil:
				uploads[l.upload.UploadID] = l.upload.Location
			case l.kind == resultKey:
				// The child ended, but what it says cannot be read: running it again would not help.
				o.result = &archive.Result{Target: t, Err: l.err}
			default:
				log.Warn().Err(l.err).Msg("a line of the child's cannot be read: an upload it opened may not be aborted should it die")
			}
		case <-done:
			// SIGTERM: stop the child, which aborts its upload and exits, and await it a while.
			done = nil
			stopAt = time.Now().Add(c.stopWithin())
			c.pace.take(1) // spent now: the child must stop before its own SIGKILL
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := c.API.StopDyno(sctx, c.App, d.ID); err != nil {
				log.Error().Err(err).Msg("cannot stop the dyno: stop it with `heroku ps:stop " + d.Name + "`")
			} else {
				log.Info().Msg("dyno stopped")
			}
			cancel()
		case <-tick.C:
			now := time.Now()
			// The log says when the process exits; its state is read only when the log has been
			// silent a while (a quiet child, a stream that lost lines), or after a stop.
			quiet := c.pollEvery()
			if o.result != nil {
				quiet = ResultHold + c.drain() // it repeats its result that long, then exits
			}
			if !stopAt.IsZero() {
				quiet = min(quiet, 5*time.Second) // stopping: its end must be seen within StopWithin
			}
			if ended.IsZero() && now.Sub(heard) >= quiet && now.Sub(polled) >= quiet {
				polled = now
				if c.gone(ctx, log, d, !stopAt.IsZero()) {
					now = time.Now()
					ended = now
				}
			}
			drained := !ended.IsZero() && (o.result != nil || now.Sub(ended) >= c.drain())
			late := (!stopAt.IsZero() && now.After(stopAt)) || now.After(limit)
			if !drained && !late {
				continue
			}
			// Heroku counts the time to live from the dyno's creation, after the POST was sent.
			o.atTTL = c.TTL > 0 && !ended.IsZero() && ended.Sub(sent) >= c.ttl()
			if o.result == nil {
				switch {
				case exit == 0:
					// It archived the target, but its result line was lost in Heroku's logs:
					// a success, and running it again would archive the target twice.
					log.Warn().Msg("the dyno exited 0 but its result line did not reach the coordinator (lost in Heroku's logs): counted as archived; its log has the details")
					o.result = &archive.Result{Target: t}
					return o
				case late:
					o.err = errors.New("the dyno did not end in time")
				case o.atTTL:
					o.err = fmt.Errorf("the dyno was stopped at its time to live (%s) before it wrote its result; %s", c.ttl(), c.TTLFix)
				default:
					o.err = errors.New("the dyno ended without writing its result (crashed, out of memory, or stopped)")
				}
				c.abortUploads(log, uploads)
			}
			return o
		}
	}
}

// gone reads the dyno's state, within the run's budget; true when it ended.
func (c *Coordinator) gone(ctx context.Context, log zerolog.Logger, d heroku.Dyno, stopping bool) bool {
	// Each read is bounded, tighter once stopping: SIGKILL follows SIGTERM in 30 s.
	bound := 30 * time.Second
	if stopping {
		bound = 5 * time.Second
	} else if c.pace.wait(ctx, 1) != nil {
		return false
	}
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
	defer cancel()
	if stopping {
		c.pace.take(1)
	}
	info, err := c.API.DynoInfo(ictx, c.App, d.ID)
	switch {
	case heroku.IsNotFound(err), err == nil && (info.State == "crashed" || info.State == "down" || info.State == "idle"):
		return true
	case err != nil:
		if heroku.RetryAfter(err) > 0 {
			c.pace.hold(heroku.RetryAfter(err))
		}
		log.Warn().Err(err).Msg("cannot read the dyno's state (trying again)")
	}
	return false
}

// start starts the target's dyno, waiting out Heroku's refusals; sent is when the request that
// started it was sent.
func (c *Coordinator) start(ctx context.Context, log zerolog.Logger, t archive.Target) (heroku.Dyno, time.Time, error) {
	o := heroku.RunOptions{Command: c.Command(t), Size: c.Size, TimeToLive: c.TTL, Env: c.Env}
	var sent time.Time
	deadline := time.Now().Add(max(c.TTL, time.Hour)) // a limit that never lifts must still end the run
	for i := 0; ; i++ {
		// The child's own calls are charged with its start: the run's budget is the children's too.
		if err := c.pace.wait(ctx, 1+ChildCalls); err != nil || ctx.Err() != nil {
			return heroku.Dyno{}, sent, ctx.Err() // no new dyno once the run is cancelled
		}
		sent = time.Now()
		d, err := c.API.RunDetached(ctx, c.App, o)
		if err == nil {
			return d, sent, nil
		}
		if !errors.Is(err, heroku.ErrDynoRefused) && !heroku.IsPermanent(err) {
			// A 5xx, a broken connection or a SIGTERM while the POST was on its way: the dyno
			// may run all the same. Adopt it, or on a SIGTERM stop it, rather than leave it
			// unfollowed or start a second one.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			c.pace.take(1)
			found, ok := c.find(lctx, o.Command)
			if ok && ctx.Err() != nil {
				c.API.StopDyno(lctx, c.App, found.ID)
			}
			cancel()
			if ok && ctx.Err() == nil {
				log.Info().Str("dyno", found.Name).Err(err).Msg("the dyno started although Heroku's answer was lost: following it")
				return found, sent, nil
			}
		}
		if !errors.Is(err, heroku.ErrDynoRefused) || ctx.Err() != nil {
			return heroku.Dyno{}, sent, err
		}
		wait := max(heroku.RetryAfter(err), backoff.Delay(c.retryBase(), c.retryCap(), i))
		if heroku.RetryAfter(err) > 0 {
			c.pace.hold(heroku.RetryAfter(err)) // a 429: every call of the run waits
		}
		if time.Now().Add(wait).After(deadline) {
			return heroku.Dyno{}, sent, fmt.Errorf("heroku kept refusing to start a dyno: %w", err)
		}
		if i == 0 {
			log.Info().Err(err).Str("retry_in", wait.Round(time.Millisecond).String()).
				Msg("Heroku refused the dyno for now (the app's one-off dyno limit, a release not visible yet, or the rate limit): waiting")
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return heroku.Dyno{}, sent, err
		}
	}
}

// find looks for a running dyno of this command (the command names the target, and targets run
// one dyno at a time).
func (c *Coordinator) find(ctx context.Context, command string) (heroku.Dyno, bool) {
	ds, err := c.API.DynoList(ctx, c.App)
	if err != nil {
		return heroku.Dyno{}, false
	}
	for _, d := range ds {
		if d.Command == command && (d.State == "starting" || d.State == "up") {
			return d, true
		}
	}
	return heroku.Dyno{}, false
}

// abortUploads aborts the uploads a vanished child left open, so that no part lingers until
// the bucket's lifecycle rule.
func (c *Coordinator) abortUploads(log zerolog.Logger, uploads map[string]string) {
	for id, loc := range uploads {
		actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, a := range c.Abort {
			ok, err := a.AbortUpload(actx, loc, id)
			if err != nil {
				log.Warn().Err(err).Str("upload", loc).Msg("cannot abort the upload the dyno left open (the bucket's lifecycle rule removes it)")
			} else if ok {
				log.Info().Str("upload", loc).Msg("aborted the upload the dyno left open")
			}
		}
		cancel()
	}
}

// ttl is the time to live Heroku applies: TTL in whole seconds, at most a day.
func (c *Coordinator) ttl() time.Duration { return min(c.TTL, 24*time.Hour).Truncate(time.Second) }

// pollEvery is how long a dyno's log may stay silent before its state is read: Poll, longer
// when the account's budget runs low.
func (c *Coordinator) pollEvery() time.Duration {
	d := orDefault(c.Poll, 2*time.Minute)
	if c.Rate != nil {
		if n, ok := c.Rate.RateLimitRemaining(); ok && n < lowRemaining {
			d *= time.Duration(min(10, lowRemaining/max(n, 1)))
		}
	}
	return d
}

// tick is how often a followed dyno's end is checked; no call is made unless one is due.
func (c *Coordinator) tick() time.Duration { return min(time.Second, c.drain()/4) }

func (c *Coordinator) drain() time.Duration   { return orDefault(c.Drain, 10*time.Second) }
func (c *Coordinator) silence() time.Duration { return orDefault(c.Silence, time.Minute) }
func (c *Coordinator) replay() int {
	if c.Replay > 0 {
		return c.Replay
	}
	return 1500
}
func (c *Coordinator) retryBase() time.Duration {
	return orDefault(c.RetryBase, 2*time.Second)
}
func (c *Coordinator) retryCap() time.Duration   { return orDefault(c.RetryCap, 30*time.Second) }
func (c *Coordinator) stopWithin() time.Duration { return orDefault(c.StopWithin, 20*time.Second) }

func orDefault[T int | time.Duration](d, def T) T {
	if d > 0 {
		return d
	}
	return def
}
