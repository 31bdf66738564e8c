package pgdump

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Table data is decompressed on worker goroutines, so a machine with several cores checks several
// tables at once (one table's stream is sequential by nature). The reading goroutine copies each
// block's compressed bytes into segments, at most maxSegs of them in flight, and queues the block
// as a job; workers take jobs in file order. A job blocks the reader only when the segments run
// out, and they are held only by earlier jobs, which are complete and being decoded, or by the
// current one, which the next free worker takes; so the pipeline cannot deadlock.
//
// Keeping up (Options.behind set), the reader waits for the workers as it would otherwise, but
// gives up waiting once behind says the check has held its input back for longer than it may:
// then it cuts the job, the worker abandons it, and the reader checks the rest of that table's
// data for framing only. A full queue alone, as when a range of the download arrives all at
// once, is never a reason to cut.
const (
	segSize    = 64 << 10
	maxSegs    = 256 // 16 MiB of compressed data in flight
	maxWorkers = 4
)

type job struct {
	block int // ordinal of the data block in the archive
	entry int // index in checker.entries
	start int64
	count bool
	in    chan []byte
	// cut is set when the reader stopped feeding the job so as not to fall behind; the worker
	// then abandons it, and the table counts as checked for framing only.
	cut atomic.Bool

	// Set by the worker; read after the workers have stopped. inflated is how many compressed
	// bytes the decoder took: all of them, unless the job was cut.
	n, rows, inflated int64
	err               error
}

type pool struct {
	alg    string
	opts   Options
	jobs   chan *job
	tokens chan struct{} // one per segment in flight
	failed atomic.Bool   // a worker found damage: the reader stops early
	wg     sync.WaitGroup
}

var segPool = sync.Pool{New: func() any { b := make([]byte, segSize); return &b }}

// jobQueue is how many segments a job holds before the reader waits for a worker to take it.
const jobQueue = 64

var (
	errAborted = errors.New("stopped after damage in an earlier data block")
	errCut     = errors.New("the reader stopped feeding this data block")
)

func newPool(alg string, o Options) *pool {
	w := min(runtime.GOMAXPROCS(0), maxWorkers)
	if alg == "zstd" {
		w = min(w, 2) // each decoder may need a window of up to zstdMaxWindow
	}
	segs := maxSegs / max(1, o.Share)
	if o.segs > 0 {
		segs = o.segs
	}
	p := &pool{alg: alg, opts: o, jobs: make(chan *job, 64), tokens: make(chan struct{}, segs)}
	for i := 0; i < w; i++ {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *pool) work() {
	defer p.wg.Done()
	d := decodersPool.Get().(*decoders)
	defer d.release()
	for j := range p.jobs {
		if p.opts.beforeDecode != nil {
			p.opts.beforeDecode()
		}
		r := segReader{p: p, j: j}
		j.n, j.rows, j.err = d.decodeStream(p.alg, &r, j.count)
		j.inflated = r.n - int64(d.br.Buffered()) // read ahead into the buffer is not decoded
		switch {
		case errors.Is(j.err, errCut):
			j.err = nil // abandoned, not damaged: what the decoder saw until then was sound
		case j.err != nil:
			j.err = explain(p.alg, j.err, r.n-int64(d.br.Buffered()))
			p.failed.Store(true)
		}
		r.drain()
		j.in = nil // the reader is done with it; do not keep its buffer for the rest of the check
	}
}

// get returns an empty segment, waiting for one (see offer); nil means the job must be cut.
func (p *pool) get() []byte {
	if !offer(p, p.tokens, struct{}{}) {
		return nil
	}
	return (*segPool.Get().(*[]byte))[:0]
}

// pollBehind is how often a reader waiting for the workers asks whether it has waited too long.
const pollBehind = 10 * time.Millisecond

// offer sends v on ch, waiting for room as long as it takes, or, keeping up, until the check
// has held its input back for longer than it may; then it gives up and reports false.
func offer[T any](p *pool, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	default:
	}
	if p.opts.behind == nil {
		ch <- v
		return true
	}
	// Asked at once, not only after a poll interval: a worker that is a little slower than the
	// input makes many waits of a millisecond each, none of which would ever last a poll, while
	// together they hold the transfer back without end.
	if p.opts.behind() {
		return false
	}
	t := time.NewTicker(pollBehind)
	defer t.Stop()
	for {
		select {
		case ch <- v:
			return true
		case <-t.C:
			if p.opts.behind() {
				return false
			}
		}
	}
}

func (p *pool) put(seg []byte) {
	seg = seg[:cap(seg)]
	segPool.Put(&seg)
	<-p.tokens
}

// stop ends the workers once every queued job is done.
func (p *pool) stop() {
	close(p.jobs)
	p.wg.Wait()
}

// segReader is a worker's view of a job's compressed bytes. Once the job is cut it reads as
// errCut, so the worker stops at once and gives the segments back for the next table.
type segReader struct {
	p   *pool
	j   *job
	cur []byte
	off int
	n   int64 // bytes handed out
}

func (r *segReader) Read(b []byte) (int, error) {
	if r.j.cut.Load() {
		return 0, errCut
	}
	for r.off == len(r.cur) {
		if r.cur != nil {
			r.p.put(r.cur)
			r.cur, r.off = nil, 0
		}
		seg, ok := <-r.j.in
		if !ok {
			if r.j.cut.Load() {
				return 0, errCut
			}
			return 0, io.EOF
		}
		r.cur, r.off = seg, 0
		if r.p.opts.takeSeg != nil {
			r.p.opts.takeSeg()
		}
	}
	k := copy(b, r.cur[r.off:])
	r.off += k
	r.n += int64(k)
	return k, nil
}

// drain gives back the segments the decoder did not read, up to the end of the job.
func (r *segReader) drain() {
	if r.cur != nil {
		r.p.put(r.cur)
		r.cur, r.off = nil, 0
	}
	for seg := range r.j.in {
		r.p.put(seg)
	}
}

// dispatch reads one table's data stream from the archive into a job for the workers. Once the job
// is cut, the rest of the stream is read for its chunk framing only.
func (c *checker) dispatch(j *job) error {
	p := c.pool
	c.jobs = append(c.jobs, j)
	c.stream.reset(c.s)
	if !c.queue(j) {
		return c.stream.each(nil)
	}
	var seg []byte
	defer func() {
		if j.cut.Load() {
			return // cut closed j.in
		}
		switch {
		case len(seg) > 0:
			if !c.send(j, seg) {
				p.put(seg)
				c.cut(j)
				return
			}
		case seg != nil:
			p.put(seg)
		}
		close(j.in)
	}()
	for {
		if p.failed.Load() {
			return errAborted
		}
		v, err := c.stream.view()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for len(v) > 0 {
			if seg == nil {
				if seg = p.get(); seg == nil {
					c.cut(j)
					return c.stream.each(nil)
				}
			}
			k := copy(seg[len(seg):cap(seg)], v)
			seg = seg[:len(seg)+k]
			v = v[k:]
			c.stream.consume(k)
			if len(seg) == cap(seg) {
				full := seg
				seg = nil
				if !c.send(j, full) {
					p.put(full)
					c.cut(j)
					return c.stream.each(nil)
				}
			}
		}
	}
}

// queue hands the job to the workers (see offer); when it gives up, the job is cut before it
// starts.
func (c *checker) queue(j *job) bool {
	if offer(c.pool, c.pool.jobs, j) {
		return true
	}
	j.cut.Store(true)
	c.cutHook()
	return false
}

// send queues a full segment for the job's worker (see offer).
func (c *checker) send(j *job, seg []byte) bool { return offer(c.pool, j.in, seg) }

// cut stops feeding a queued job.
func (c *checker) cut(j *job) {
	j.cut.Store(true) // before the close, so the worker sees errCut rather than the end of data
	close(j.in)
	c.cutHook()
}

func (c *checker) cutHook() {
	if c.pool.opts.onCut != nil {
		c.pool.opts.onCut()
	}
}
