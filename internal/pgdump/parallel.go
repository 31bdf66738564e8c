package pgdump

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// Table data is decompressed on worker goroutines, so a machine with several cores checks several
// tables at once (one table's stream is sequential by nature). The reading goroutine copies each
// block's compressed bytes into segments, at most maxSegs of them in flight, and queues the block
// as a job; workers take jobs in file order. A job blocks the reader only when the segments run
// out, and they are held only by earlier jobs, which are complete and being decoded, or by the
// current one, which the next free worker takes; so the pipeline cannot deadlock.
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

	structErr error // damage in the chunks, found by the reader; set before in is closed

	// Set by the worker; read after the workers have stopped.
	n, rows int64
	err     error
}

type pool struct {
	alg    string
	jobs   chan *job
	tokens chan struct{} // one per segment in flight
	failed atomic.Bool   // a worker found damage: the reader stops early
	wg     sync.WaitGroup
}

var segPool = sync.Pool{New: func() any { b := make([]byte, segSize); return &b }}

// jobQueue is how many segments a job holds before the reader waits for a worker to take it.
const jobQueue = 64

var errAborted = errors.New("stopped after damage in an earlier data block")

func newPool(alg string) *pool {
	w := min(runtime.GOMAXPROCS(0), maxWorkers)
	if alg == "zstd" {
		w = min(w, 2) // each decoder may need a window of up to zstdMaxWindow
	}
	p := &pool{alg: alg, jobs: make(chan *job, 64), tokens: make(chan struct{}, maxSegs)}
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
		r := segReader{p: p, in: j.in}
		j.n, j.rows, j.err = d.decodeStream(p.alg, &r, j.count)
		if j.err != nil {
			j.err = explain(p.alg, j.err, r.n-int64(d.br.Buffered()))
			p.failed.Store(true)
		}
		r.drain()
		j.in = nil // the reader is done with it; do not keep its buffer for the rest of the check
	}
}

func (p *pool) get() []byte {
	p.tokens <- struct{}{}
	return (*segPool.Get().(*[]byte))[:0]
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

// segReader is a worker's view of a job's compressed bytes.
type segReader struct {
	p   *pool
	in  chan []byte
	cur []byte
	off int
	n   int64 // bytes handed out
}

func (r *segReader) Read(b []byte) (int, error) {
	for r.off == len(r.cur) {
		if r.cur != nil {
			r.p.put(r.cur)
			r.cur, r.off = nil, 0
		}
		seg, ok := <-r.in
		if !ok {
			return 0, io.EOF
		}
		r.cur, r.off = seg, 0
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
	for seg := range r.in {
		r.p.put(seg)
	}
}

// dispatch reads one table's data stream from the archive into a job for the workers.
func (c *checker) dispatch(j *job) (err error) {
	p := c.pool
	c.jobs = append(c.jobs, j)
	p.jobs <- j
	var seg []byte
	defer func() {
		if len(seg) > 0 {
			j.in <- seg
		} else if seg != nil {
			p.put(seg)
		}
		j.structErr = err
		close(j.in)
	}()
	c.stream.reset(c.s)
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
				seg = p.get()
			}
			k := copy(seg[len(seg):cap(seg)], v)
			seg = seg[:len(seg)+k]
			v = v[k:]
			c.stream.consume(k)
			if len(seg) == cap(seg) {
				j.in <- seg
				seg = nil
			}
		}
	}
}
