package testenv

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Output collects what a process or a logger writes while a test reads it: writes may come from
// any goroutine (exec.Cmd's copier, a watchdog's timer), and WaitFor waits for a piece of output
// as an event instead of sleeping.
type Output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next write
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.b.Write(p)
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return n, err
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// WaitFor reports true once the output holds substr, false when timeout passes first.
func (o *Output) WaitFor(substr string, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		o.mu.Lock()
		if strings.Contains(o.b.String(), substr) {
			o.mu.Unlock()
			return true
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return false
		}
	}
}
