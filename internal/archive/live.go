package archive

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// liveLine is the one progress line a terminal shows, shared by every target streaming at once:
// each has a slot, and any change redraws the whole line, so that targets running side by side
// never overwrite each other's line. A nil liveLine draws nothing.
type liveLine struct {
	mu    sync.Mutex
	w     io.Writer
	next  int
	slots map[int]string
	order []int
}

// join gives a target its slot.
func (l *liveLine) join() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slots == nil {
		l.slots = map[int]string{}
	}
	l.next++
	l.slots[l.next] = ""
	l.order = append(l.order, l.next)
	return l.next
}

// set changes a slot's text and redraws the line.
func (l *liveLine) set(slot int, text string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots[slot] = text
	l.draw()
}

// leave frees the slot; the line is cleared once no target streams.
func (l *liveLine) leave(slot int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.slots, slot)
	for i, s := range l.order {
		if s == slot {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	l.draw()
}

func (l *liveLine) draw() {
	var parts []string
	for _, s := range l.order {
		if t := l.slots[s]; t != "" {
			parts = append(parts, t)
		}
	}
	fmt.Fprint(l.w, "\r\033[K"+strings.Join(parts, "  |  "))
}
