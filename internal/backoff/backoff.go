// Package backoff holds the waiting shared by every retry loop: capped, jittered exponential
// delays, and a sleep that a cancelled context (a SIGTERM) cuts short.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry number attempt (0-based): base doubled per attempt, capped at
// max, then jittered to between half and all of it so that clients retrying together spread out.
func Delay(base, max time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 16)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx is done (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
