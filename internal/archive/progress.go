package archive

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Progress receives what the job does as events, from every target running at once (so
// concurrently): a terminal renderer draws them; the job itself never draws.
type Progress interface {
	Event(Event)
}

// EventKind says what an Event reports.
type EventKind int

const (
	// Started: the target's bytes began to stream to the destinations (Total: their size, or
	// store.UnknownSize).
	Started EventKind = iota
	// Bytes: how many bytes have streamed by Elapsed; about once a second while they stream.
	Bytes
	// Phase: the target entered Phase (PhaseUpload, PhaseManifest, PhaseMarkers).
	Phase
	// Finished: one destination's copy ended (Destination set), or the whole target (Destination
	// empty); Err says why it failed.
	Finished
)

// The phases of a target after its header was checked.
const (
	PhaseUpload   = "upload"
	PhaseManifest = "manifest"
	PhaseMarkers  = "markers"
)

// Event is one step of one target.
type Event struct {
	Kind   EventKind
	Target Target
	// Label names the stream for people: its backup, and its target too when several targets
	// run at once.
	Label       string
	Phase       string
	Destination string
	Bytes       int64
	Total       int64
	Elapsed     time.Duration
	Err         error
}

// ETA is how long the rest of the stream will take at the rate so far: "?" when it cannot tell.
func (e Event) ETA() string {
	if e.Total < 0 || e.Bytes <= 0 || e.Bytes >= e.Total {
		return "?"
	}
	return time.Duration(float64(e.Elapsed) * float64(e.Total-e.Bytes) / float64(e.Bytes)).Round(time.Second).String()
}

// emit hands ev to Progress, if any.
func (j *Job) emit(ev Event) {
	if j.Progress != nil {
		j.Progress.Event(ev)
	}
}

// reportTransfer reports the bytes of m as they stream (each second as an event, every
// ProgressEvery in the log, with rate and ETA) until the returned stop is called.
func (j *Job) reportTransfer(log zerolog.Logger, m *meter, ev Event) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	started := j.now()
	ev.Kind = Started
	j.emit(ev)
	go func() {
		defer close(finished)
		every := j.progressEvery()
		tick := time.NewTicker(min(every, time.Second))
		defer tick.Stop()
		lastLog := started
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := j.now()
			ev.Kind, ev.Bytes, ev.Elapsed = Bytes, m.n.Load(), now.Sub(started)
			j.emit(ev)
			if now.Sub(lastLog) >= every {
				lastLog = now
				l := log.Info().Int64("bytes", ev.Bytes)
				if ev.Total >= 0 {
					l = l.Int64("total", ev.Total).Str("eta", ev.ETA())
				}
				l.Str("rate", units.Rate(ev.Bytes, ev.Elapsed)).Msg("transfer in progress")
			}
		}
	}()
	return func() { close(done); <-finished }
}
