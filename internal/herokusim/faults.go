package herokusim

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults are the simulator's knobs for what Heroku and S3 do on a bad day. Every method is safe
// to call while requests are being served; a knob applies to requests that arrive after it is set.
//
//	FailNext / FailNextPath   the next n Platform or Data API answers forced to a status (429, 503...)
//	FailCaptures              the next n captures fail with a pg_dump error log line
//	SlowCaptures              captures stay running that much longer
//	SetURLTTL                 signed URLs live d instead of an hour (expire mid-download)
//	CutStorage                the next n downloads drop the connection after some body bytes
//	StallStorage              the next n downloads stop sending after some body bytes, connection open
//	SetStorageErrorPage       downloads answer 200 with an HTML error page instead of the dump
//	SetWrongContentLength     downloads announce one byte more than they send, then close
//	LimitStorage              downloads beyond n at once answer 503 SlowDown (S3 throttling a prefix)
//	StallProvisioning         the next n add-ons provisioned through the API never leave "provisioning"
//	FailAddonDeletes          the next n add-on DELETEs answer status and delete nothing
//	Reset                     all knobs off
type Faults struct {
	mu           sync.Mutex
	failNext     []failure
	failCaptures int
	failLine     string
	slowCaptures time.Duration
	urlTTL       time.Duration
	cutAfter     int64
	cutCount     int
	stallAfter   int64
	stallCount   int
	unstall      chan struct{} // closed by Reset: stalled downloads end
	errorPage    bool
	wrongLength  bool
	storageMax   int // downloads served at once before 503 SlowDown; 0: no limit
	storageNow   int
	storageRefus int
	stuckAddons  int
	failDeletes  []int // statuses of the next DELETE /apps/{app}/addons/{id} answers
}

type failure struct {
	api        string // platform or data
	path       string // "" or a substring the request path must contain
	status     int
	retryAfter time.Duration
}

// FailNext makes the next n requests to api ("platform" or "data") answer status with a Heroku
// error body: 429 is the rate limit (with Retry-After in whole seconds, and RateLimit-Remaining 0
// on the Platform API), 503 an unavailable service, and so on.
func (f *Faults) FailNext(api string, status, n int, retryAfter time.Duration) {
	f.FailNextPath(api, "", status, n, retryAfter)
}

// FailNextPath is FailNext for requests whose path contains path only, e.g. "/backups" or
// "/actions/public-url"; other requests pass untouched and do not use up the n.
func (f *Faults) FailNextPath(api, path string, status, n int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failNext = append(f.failNext, failure{api, path, status, retryAfter})
	}
}

func (f *Faults) takeFailure(api, path string) (failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.failNext {
		if x.api == api && strings.Contains(path, x.path) {
			f.failNext = append(f.failNext[:i:i], f.failNext[i+1:]...)
			return x, true
		}
	}
	return failure{}, false
}

// FailCaptures makes the next n captures fail without running pg_dump: finished, succeeded false,
// and logLine as their "error" log line (a pg_dump-like default when empty).
func (f *Faults) FailCaptures(n int, logLine string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if logLine == "" {
		logLine = "pg_dump: error: connection to server was lost"
	}
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

// SlowCaptures keeps captures started from now on running d longer than usual (0 restores).
// A cancel still ends them at once.
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

// SetURLTTL makes signed URLs issued from now on expire after d instead of Options.URLTTL
// (0 restores). X-Amz-Expires has a one-second resolution, like S3's.
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

// CutStorage makes the next n successful downloads close their connection abruptly after
// afterBytes body bytes, as a reset connection does (n = 0 turns it off).
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

// StallStorage makes the next n successful downloads send afterBytes body bytes and then nothing
// more, with the connection left open, as a stuck server or middlebox does; the download ends
// only when the client gives up (or Reset is called). n = 0 turns it off.
func (f *Faults) StallStorage(afterBytes int64, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stallAfter, f.stallCount = afterBytes, n
	if f.unstall == nil {
		f.unstall = make(chan struct{})
	}
}

// stalling returns w, or, when a stall is due, w wrapped so that it stalls after its bytes.
func (f *Faults) stalling(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stallCount == 0 {
		return w
	}
	f.stallCount--
	return &stallWriter{ResponseWriter: w, left: f.stallAfter, gone: r.Context().Done(), unstall: f.unstall}
}

// stallWriter passes left body bytes through and flushes them, then holds every later Write
// until the client goes away or the knob is reset.
type stallWriter struct {
	http.ResponseWriter
	left    int64
	gone    <-chan struct{}
	unstall <-chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	n := 0
	if s.left > 0 {
		k := min(int64(len(p)), s.left)
		var err error
		n, err = s.ResponseWriter.Write(p[:k])
		s.left -= int64(n)
		if err != nil || n == len(p) {
			return n, err
		}
	}
	http.NewResponseController(s.ResponseWriter).Flush()
	select {
	case <-s.gone:
	case <-s.unstall:
	}
	return n, io.ErrClosedPipe
}

// SetStorageErrorPage makes downloads answer 200 with an HTML error page instead of the dump —
// what a client that does not check the body stores as if it were the backup.
func (f *Faults) SetStorageErrorPage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errorPage = on
}

// SetWrongContentLength makes downloads announce one byte more than the object has (in
// Content-Length and in Content-Range's total), send what there is, and close the connection.
func (f *Faults) SetWrongContentLength(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wrongLength = on
}

// LimitStorage makes downloads beyond n at once answer 503 SlowDown, as S3 does when requests to
// a prefix come faster than it has scaled for; 0 lifts the limit.
func (f *Faults) LimitStorage(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storageMax = n
}

// StorageRefused is how many downloads LimitStorage has refused.
func (f *Faults) StorageRefused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.storageRefus
}

// enterStorage admits a download under LimitStorage; a download admitted calls leaveStorage.
func (f *Faults) enterStorage() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.storageMax > 0 && f.storageNow >= f.storageMax {
		f.storageRefus++
		return false
	}
	f.storageNow++
	return true
}

func (f *Faults) leaveStorage() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storageNow--
}

func (f *Faults) storageMode() (errorPage, wrongLength bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errorPage, f.wrongLength
}

// Reset turns every knob off and forgets pending failures.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failCaptures, f.failLine, f.slowCaptures, f.urlTTL = nil, 0, "", 0, 0
	f.cutAfter, f.cutCount, f.errorPage, f.wrongLength, f.storageMax = 0, 0, false, false, 0
	f.stallAfter, f.stallCount, f.stuckAddons, f.failDeletes = 0, 0, 0, nil
	if f.unstall != nil {
		close(f.unstall)
		f.unstall = nil
	}
}

// Unwrap lets http.ResponseController reach the connection under a stalling writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// StallProvisioning makes the next n add-ons created through POST /apps/{app}/addons stay in
// state "provisioning" for ever (their database is made, their config var never appears).
func (f *Faults) StallProvisioning(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stuckAddons = n
}

func (f *Faults) takeStuckProvision() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stuckAddons > 0 {
		f.stuckAddons--
		return true
	}
	return false
}

// FailAddonDeletes makes the next n DELETE /apps/{app}/addons/{id} answer status (403, 503...)
// with a Heroku error body, leaving the add-on in place.
func (f *Faults) FailAddonDeletes(status, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failDeletes = append(f.failDeletes, status)
	}
}

func (f *Faults) takeDeleteFailure() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failDeletes) == 0 {
		return 0, false
	}
	st := f.failDeletes[0]
	f.failDeletes = f.failDeletes[1:]
	return st, true
}
