package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for attempt, max := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		for range 50 {
			d := Delay(time.Second, 10*time.Second, attempt)
			if d < max/2 || d > max {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, max/2, max)
			}
		}
	}
	if d := Delay(time.Second, time.Minute, 1000); d > time.Minute {
		t.Errorf("a huge attempt overflows the cap: %s", d)
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); err == nil || time.Since(start) > time.Second {
		t.Errorf("Sleep on a cancelled context: %v after %s", err, time.Since(start))
	}
}
