package herokusim

import (
	"sync"
	"time"
)

// Faults are the simulator's knobs for what Heroku and S3 do on a bad day. Every method is safe
// to call while requests are served.
type Faults struct {
	mu           sync.Mutex
	failNext     map[string][]failure // by api: platform or data
	failCaptures int
	failLine     string
	slowCaptures time.Duration
	urlTTL       time.Duration
	cutAfter     int64
	cutCount     int
	errorPage    bool
	wrongLength  bool
}

type failure struct {
	status     int
	retryAfter time.Duration
}

// FailNext makes the next n requests to api ("platform" or "data") answer status: 429 as
// Heroku's rate limit with Retry-After (whole seconds), 5xx as an unavailable service.
func (f *Faults) FailNext(api string, status, n int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext == nil {
		f.failNext = map[string][]failure{}
	}
	for range n {
		f.failNext[api] = append(f.failNext[api], failure{status, retryAfter})
	}
}

func (f *Faults) takeFailure(api string) (failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.failNext[api]
	if len(q) == 0 {
		return failure{}, false
	}
	f.failNext[api] = q[1:]
	return q[0], true
}

// FailCaptures makes the next n captures fail, with logLine as Heroku's error log line.
func (f *Faults) FailCaptures(n int, logLine string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCaptures, f.failLine = n, logLine
}

func (f *Faults) takeCaptureFailure() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCaptures == 0 {
		return false, ""
	}
	f.failCaptures--
	return true, f.failLine
}

// SlowCaptures keeps later captures running d longer (0 restores).
func (f *Faults) SlowCaptures(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slowCaptures = d
}

func (f *Faults) captureSlowness() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slowCaptures
}

// SetURLTTL makes later signed URLs expire after d instead of an hour (0 restores).
func (f *Faults) SetURLTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.urlTTL = d
}

func (f *Faults) ttl(def time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.urlTTL > 0 {
		return f.urlTTL
	}
	return def
}

// CutStorage makes the next n downloads close their connection abruptly after afterBytes body
// bytes, as a reset connection does.
func (f *Faults) CutStorage(afterBytes int64, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAfter, f.cutCount = afterBytes, n
}

func (f *Faults) takeCut() (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cutCount == 0 {
		return 0, false
	}
	f.cutCount--
	return f.cutAfter, true
}

// SetStorageErrorPage makes downloads answer 200 with an HTML error page instead of the dump.
func (f *Faults) SetStorageErrorPage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errorPage = on
}

// SetWrongContentLength makes downloads announce one byte more than the object has, then close.
func (f *Faults) SetWrongContentLength(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wrongLength = on
}

func (f *Faults) storageMode() (errorPage, wrongLength bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errorPage, f.wrongLength
}
