package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/units"
)

// URLFunc returns a download URL and when it expires. It is called again for a new one when the
// previous one has expired or is about to (a Heroku signed URL lives one hour; a big download can
// outlive it).
type URLFunc func(ctx context.Context) (url string, expires time.Time, err error)

// Options tune the ranged download.
type Options struct {
	// Concurrency is the most ranges in flight (default 16); how many are, the download
	// measures (see tuner).
	Concurrency int
	ChunkSize   int64         // bytes per range; default RangeSize
	MaxAttempts int           // attempts without progress per range before the download fails; default 6
	BaseDelay   time.Duration // first back-off between attempts; default 500 ms, doubling, capped at 10 s
	// Stall bounds the silence of a range request (default 30 s of body, 60 s for headers): a
	// range whose server stops sending with the connection open is abandoned and resumed at
	// its byte, as after a reset.
	Stall stall.Options

	tuneWindow time.Duration // for tests; 0 is tuneWindow
}

// RangeSize is the bytes of one ranged GET: small, so many connections fit in little memory
// (16 in flight hold 32 MiB) and a range resumed after a reset repeats little; big enough that a
// request's latency is a small part of its time.
const RangeSize = 2 << 20

// Memory is what a download with at most concurrency ranges in flight holds in buffers: every
// slot full and the range being read.
func Memory(concurrency int, chunkSize int64) int64 {
	if chunkSize <= 0 {
		chunkSize = RangeSize
	}
	return int64(concurrency+1) * chunkSize
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = RangeSize
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6 // about 15 s of back-off: a broken source fails in reasonable time
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 500 * time.Millisecond
	}
	return o
}

// Ranged downloads a signed URL as concurrent Range requests and yields the bytes in order.
// A range whose connection breaks is resumed at the byte where it stopped; an expired URL is
// renewed. Memory is bounded by Memory(Concurrency, ChunkSize). The number of ranges in flight is
// measured while the download runs, up to Concurrency, and logged through the logger in the
// context once chosen.
type Ranged struct {
	HTTP    *http.Client // nil: http.DefaultClient; every request goes through a stall watchdog
	Options Options
}

// Open learns the size with a first ranged GET (the URL refuses HEAD) and starts the download.
func (d *Ranged) Open(ctx context.Context, urlFn URLFunc) (io.ReadCloser, int64, error) {
	o := d.Options.withDefaults()
	src := &urlSource{fn: urlFn}
	ctx, cancel := context.WithCancel(ctx)
	log := zerolog.Ctx(ctx)
	r := &rangedReader{ctx: ctx, cancel: cancel, o: o, src: src, http: &stall.Client{Next: d.client(), Options: o.Stall},
		free: make(chan []byte, o.Concurrency+1), tune: newTuner(o.Concurrency, o.ChunkSize, o.tuneWindow, func(tu tuning) {
			ev := log.Info().Int("connections", tu.Connections).Int("max_connections", o.Concurrency)
			if tu.Rate > 0 {
				ev = ev.Str("rate", units.PerSecond(tu.Rate))
			}
			ev.Str("why", tu.Reason).Msg("download connections chosen")
		})}
	r.tune.taken = 1 // the first range's slot
	first, err := r.fetch(ctx, 0, o.ChunkSize, nil)
	if err != nil {
		cancel()
		return nil, 0, err
	}
	r.size = first.total
	r.chunks = make(chan *chunk, o.Concurrency+1)
	go r.produce(first)
	return r, r.size, nil
}

type chunk struct {
	buf  []byte
	err  error
	done chan struct{}
}

type rangedReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	http   stall.Doer
	o      Options
	src    *urlSource
	tune   *tuner
	size   int64
	chunks chan *chunk
	cur    *chunk
	off    int
	// free holds the buffers of ranges the reader is done with, for the next fetches: a list of
	// our own rather than a sync.Pool, which every garbage collection empties — and near the
	// runtime's memory limit collections are frequent, so each range would allocate anew.
	free   chan []byte
	closed sync.Once
	// fetchers are the range goroutines: Close waits for them, so no request of this download
	// is still starting, or holding a connection, once Close has returned.
	fetchers sync.WaitGroup
}

// produce starts one fetch per chunk, in order, each when the tuner gives it a slot.
func (r *rangedReader) produce(first *result) {
	defer close(r.chunks)
	r.tune.begin()
	c0 := &chunk{buf: first.data, done: make(chan struct{})}
	close(c0.done)
	select {
	case r.chunks <- c0:
	case <-r.ctx.Done():
		return
	}
	for start := int64(len(first.data)); start < r.size; start += r.o.ChunkSize {
		n := min(r.o.ChunkSize, r.size-start)
		if r.tune.acquire(r.ctx) != nil {
			return
		}
		c := &chunk{done: make(chan struct{})}
		r.chunks <- c // never blocks: the slots are fewer than its room
		r.fetchers.Add(1)
		go func(start, n int64) {
			defer r.fetchers.Done()
			defer close(c.done)
			var buf []byte
			select {
			case buf = <-r.free:
			default:
			}
			res, err := r.fetch(r.ctx, start, n, buf)
			if err != nil {
				c.err = err
				return
			}
			c.buf = res.data
		}(start, n)
	}
}

func (r *rangedReader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil && r.off < len(r.cur.buf) {
			n := copy(p, r.cur.buf[r.off:])
			r.off += n
			return n, nil
		}
		if r.cur != nil {
			select {
			case r.free <- r.cur.buf[:0]:
			default:
			}
			r.cur = nil
			r.tune.release()
		}
		c, ok := <-r.chunks
		if !ok {
			if err := r.ctx.Err(); err != nil {
				return 0, err
			}
			r.tune.finish()
			return 0, io.EOF
		}
		select {
		case <-c.done:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		if c.err != nil {
			r.cancel()
			return 0, c.err
		}
		r.cur, r.off = c, 0
	}
}

func (r *rangedReader) Close() error {
	r.closed.Do(func() {
		r.cancel()
		for range r.chunks { // let produce exit
		}
		r.fetchers.Wait() // cancelled, they end at once
	})
	return nil
}

type result struct {
	data  []byte
	total int64
}

// fetch reads bytes [start, start+n) into buf, resuming after broken connections and renewing
// an expired URL. n is a maximum when the size is not known yet (the first request).
func (r *rangedReader) fetch(ctx context.Context, start, n int64, buf []byte) (*result, error) {
	if int64(cap(buf)) < n {
		buf = make([]byte, 0, n)
	}
	buf = buf[:0]
	total := int64(-1)
	var lastErr error
	for attempt := 1; ; attempt++ {
		got, tot, err := r.get(ctx, start+int64(len(buf)), n-int64(len(buf)), buf[len(buf):n])
		buf = buf[:len(buf)+got]
		if tot >= 0 {
			if total >= 0 && tot != total {
				return nil, fmt.Errorf("fetch: the object changed size during the download (%d, then %d bytes)", total, tot)
			}
			total = tot
			if want := min(n, total-start); want < n {
				n = want // the first request asked for more than the whole object
			}
		}
		if err == nil && int64(len(buf)) == n {
			return &result{data: buf, total: total}, nil
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		var pe *permanentError
		if errors.As(err, &pe) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		lastErr = err
		if attempt >= r.o.MaxAttempts {
			return nil, fmt.Errorf("fetch: range %d-%d failed %d times, last: %w", start, start+n-1, attempt, lastErr)
		}
		if got > 0 {
			attempt = 0 // progress was made: a connection reset at 80 % is not a failed attempt
		}
		if err := backoff.Sleep(ctx, backoff.Delay(r.o.BaseDelay, 10*time.Second, attempt)); err != nil {
			return nil, err
		}
	}
}

// get issues one ranged GET for [start, start+n) and reads what it can into dst.
func (r *rangedReader) get(ctx context.Context, start, n int64, dst []byte) (got int, total int64, err error) {
	total = -1
	stale, renewed := -1, false
	for {
		u, gen, err := r.src.get(ctx, stale)
		if err != nil {
			return 0, total, &permanentError{fmt.Errorf("fetch: renew the download URL: %w", err)}
		}
		pu, err := CheckURL(u)
		if err != nil {
			return 0, total, &permanentError{err}
		}
		rctx := stall.WithLabel(ctx, fmt.Sprintf("download range %d-%d", start, start+n-1))
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, total, &permanentError{fmt.Errorf("fetch: GET %s: bad request", pu.Host)}
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, start+n-1))
		r.tune.start()
		resp, err := r.http.Do(req)
		if err != nil {
			r.tune.stop()
			return 0, total, fmt.Errorf("fetch: GET %s: %w", pu.Host, scrub.StripURL(err))
		}
		switch resp.StatusCode {
		case http.StatusPartialContent:
			a, _, tot, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || a != start {
				resp.Body.Close()
				r.tune.stop()
				return 0, total, &permanentError{fmt.Errorf("fetch: GET %s: unexpected Content-Range %q", pu.Host, resp.Header.Get("Content-Range"))}
			}
			total = tot
		case http.StatusOK:
			// The server ignored Range: only usable from byte 0, and then it is the whole object.
			if start != 0 || resp.ContentLength < 0 {
				resp.Body.Close()
				r.tune.stop()
				return 0, total, &permanentError{fmt.Errorf("fetch: GET %s: the server does not support Range requests", pu.Host)}
			}
			total = resp.ContentLength
		default:
			code := s3ErrorCode(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
				r.tune.throttled(resp.Status + code)
			}
			r.tune.stop()
			if resp.StatusCode == http.StatusForbidden && strings.Contains(code, "expired") && !renewed {
				stale, renewed = gen, true // renew once; a new URL refused again is final
				continue
			}
			err := fmt.Errorf("fetch: GET %s: %s%s", pu.Host, resp.Status, code)
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return 0, total, err
			}
			return 0, total, &permanentError{err}
		}
		want := min(int64(len(dst)), total-start)
		got, err := r.read(resp.Body, dst[:want])
		resp.Body.Close()
		r.tune.stop()
		if err != nil {
			return got, total, fmt.Errorf("fetch: reading from %s: %w", pu.Host, scrub.StripURL(err))
		}
		return got, total, nil
	}
}

// read fills dst from body in steps, counting each for the tuner as it arrives.
func (r *rangedReader) read(body io.Reader, dst []byte) (int, error) {
	const step = 256 << 10
	got := 0
	for got < len(dst) {
		n, err := io.ReadFull(body, dst[got:min(got+step, len(dst))])
		got += n
		r.tune.add(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // short of the range, whichever step it ended in
		}
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func (d *Ranged) client() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return http.DefaultClient
}

// urlSource shares one URL among the range fetchers and renews it once per expiry, whichever
// fetcher notices first.
type urlSource struct {
	fn      URLFunc
	mu      sync.Mutex
	url     string
	expires time.Time
	gen     int
}

// renewBefore is how long before its expiry a URL is replaced, so no request starts with a URL
// that dies in flight.
const renewBefore = 2 * time.Minute

// get returns the current URL and its generation; a caller whose request was refused as expired
// passes that generation as stale to get a new one.
func (s *urlSource) get(ctx context.Context, stale int) (string, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := s.url != "" && s.gen != stale && (s.expires.IsZero() || time.Until(s.expires) > renewBefore)
	if fresh {
		return s.url, s.gen, nil
	}
	u, exp, err := s.fn(ctx)
	if err != nil {
		return "", 0, err
	}
	s.url, s.expires = u, exp
	s.gen++
	return u, s.gen, nil
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// parseContentRange parses "bytes a-b/total".
func parseContentRange(s string) (a, b, total int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	as, bs, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	a, err1 = strconv.ParseInt(as, 10, 64)
	b, err2 = strconv.ParseInt(bs, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	return a, b, total, err1 == nil && err2 == nil && err3 == nil && a <= b && b < total
}
