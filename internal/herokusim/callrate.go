package herokusim

import (
	"sort"
	"time"
)

// PlatformCallPeak is the most Platform API requests received in any window of the given length
// so far (log streams, which logplex serves, are not among them): what a test of a run's rate
// budget asserts on, since Heroku refills an account's 4,500 tokens at about 75 a minute.
func (s *Sim) PlatformCallPeak(window time.Duration) int {
	var at []time.Time
	for _, r := range s.Requests() {
		if r.API == "platform" {
			at = append(at, r.At)
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	peak, first := 0, 0
	for i, t := range at {
		for t.Sub(at[first]) >= window {
			first++
		}
		peak = max(peak, i-first+1)
	}
	return peak
}
