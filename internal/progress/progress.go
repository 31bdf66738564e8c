// Package progress draws the backup job's progress events on a terminal (as under `heroku
// run`): one line, redrawn whole each time, with a part for every target streaming at once.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Line is the one progress line a terminal shows, shared by every target streaming at once:
// each has its part, and any change redraws the whole line, so that targets running side by
// side never overwrite each other's line. It is an archive.Progress.
type Line struct {
	mu    sync.Mutex
	w     io.Writer
	parts map[archive.Target]string
	order []archive.Target
}

var _ archive.Progress = (*Line)(nil)

// NewLine draws on w.
func NewLine(w io.Writer) *Line {
	return &Line{w: w, parts: map[archive.Target]string{}}
}

// Event shows a target's bytes while they stream; the line is cleared of the target once its
// bytes have stopped (any later event of it).
func (l *Line) Event(ev archive.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, shown := l.parts[ev.Target]
	switch {
	case ev.Kind == archive.Started:
		l.parts[ev.Target] = ""
		l.order = append(l.order, ev.Target)
	case !shown:
	case ev.Kind == archive.Bytes:
		l.parts[ev.Target] = text(ev)
		l.draw()
	default:
		delete(l.parts, ev.Target)
		for i, t := range l.order {
			if t == ev.Target {
				l.order = append(l.order[:i], l.order[i+1:]...)
				break
			}
		}
		l.draw()
	}
}

// text is one target's part: its bytes so far, of how many, the rate and the time left.
func text(ev archive.Event) string {
	rate := units.Rate(ev.Bytes, ev.Elapsed)
	if ev.Total < 0 {
		return fmt.Sprintf("%s  %s  %s", ev.Label, units.IEC(ev.Bytes), rate)
	}
	return fmt.Sprintf("%s  %s / %s  %3.0f%%  %s  ETA %s", ev.Label, units.IEC(ev.Bytes), units.IEC(ev.Total),
		100*float64(ev.Bytes)/float64(max(ev.Total, 1)), rate, ev.ETA())
}

func (l *Line) draw() {
	var parts []string
	for _, t := range l.order {
		if s := l.parts[t]; s != "" {
			parts = append(parts, s)
		}
	}
	fmt.Fprint(l.w, "\r\033[K"+strings.Join(parts, "  |  "))
}
