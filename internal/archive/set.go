package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// A set (Backup.Streams) is stored as one archive: every stream goes through the same stages as
// a dump, all at once, and a barrier holds each stream's end until every stream has reached its
// own, read whole and checked. A store makes an object visible only once it has read its end, so
// no stream can be committed while another may still fail; when one fails, the others' ends
// become that failure, every upload aborts, and the source's streams are stopped. Only a commit
// failing after the barrier opened can leave part of a set at a destination: its other objects
// are removed there where the destination may delete, else named. The manifest, written last,
// names every part; parts without it are not an archive.

// setStream is one stream of a set behind its stages.
type setStream struct {
	name   string // "stream 00", "part 01": in logs and errors
	key    string
	tables []string // a part's tables; nil for the first stream
	header pgdump.Header
	ds     *dumpStream
	d      delivery
	took   time.Duration
}

// archiveSet stores a set: its streams, then its manifest and markers.
func (j *Job) archiveSet(ctx context.Context, log zerolog.Logger, t Target, b Backup, res *Result) (err error) {
	set := b.Streams
	bodies := []io.ReadCloser{b.Body}
	for _, p := range set.Parts {
		bodies = append(bodies, p.Body)
	}
	defer func() {
		if err != nil && set.Stop != nil {
			set.Stop()
		}
		for _, body := range bodies {
			body.Close()
		}
	}()
	meta := b.Meta
	res.Backup = meta.Backup
	log = log.With().Str("backup", res.Backup).Logger()
	where := whereOf(t, res.Backup)
	res.Key = j.key(meta)
	bar := newBarrier(len(bodies), set.Stop)
	obj := store.Object{Key: res.Key}
	dec := j.classify(ctx, log, meta, res, &obj)
	started := j.now()
	streams := make([]*setStream, len(bodies))
	sr := setRun{t: t, where: where, backup: res.Backup, tags: obj.Tags, bar: bar, n: len(bodies)}
	var wg sync.WaitGroup
	for i, body := range bodies {
		s := &setStream{name: "stream 00", key: res.Key}
		if i > 0 {
			s.name, s.key, s.tables = fmt.Sprintf("part %02d", i), catalog.PartKey(res.Key, i), set.Parts[i-1].Tables
		}
		streams[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each stream is checked and stored on its own, so that one failing before its
			// first byte (its header) stops the others at once too.
			if err := j.storeStream(ctx, log, sr, s, body, i); err != nil {
				bar.fail(streamFailed(s.name, err))
				return
			}
			s.took = j.now().Sub(started)
			bar.done(i, s.name, copiesErr(where+" "+s.name, s.d.copies))
		}()
	}
	wg.Wait()
	if cause := bar.cause(); cause != nil {
		// No stream reached its end: nothing was committed anywhere.
		res.Copies = streams[0].d.copies
		res.setLocation()
		return fmt.Errorf("archive: upload %s: %w", where, cause)
	}
	logDownload(log, store.UnknownSize, streams[0].header)
	res.Copies = j.setCopies(ctx, streams)
	res.AlreadyArchived = streams[0].d.everywhere()
	res.Bytes, res.SHA256 = streams[0].ds.stored.n.Load(), streams[0].ds.stored.sum()
	if meta.FinishedAt.IsZero() {
		meta.FinishedAt = j.now()
	}
	j.logSet(log, res, streams, j.now().Sub(started))
	m := j.manifest(log, meta, streams[0].header, streams[0].ds, res)
	m.ManifestVersion = catalog.SetManifestVersion
	m.Set = &catalog.Set{Snapshot: set.Snapshot, Jobs: set.Jobs}
	keys := []string{res.Key}
	for _, s := range streams[1:] {
		m.Set.Parts = append(m.Set.Parts, s.part())
		keys = append(keys, s.key)
		if s.ds.checked != nil && s.ds.checked.summary != nil {
			res.FramingOnly = append(res.FramingOnly, s.ds.checked.summary.FramingOnly()...)
			res.OtherFramingOnly += s.ds.checked.summary.OtherFramingOnly
		}
	}
	// The run's summary and notifications speak of the whole set; the manifest's top-level
	// bytes stay the dump's own, as for one stream.
	res.Bytes = m.StoredBytes()
	fctx, cancel := outlive(ctx, j.commitLimit())
	defer cancel()
	j.emit(Event{Kind: Phase, Target: t, Label: res.Backup, Phase: PhaseManifest})
	if err := j.writeManifests(ctx, fctx, m, obj.Tags, res, keys); err != nil {
		return fmt.Errorf("archive: manifest %s: %w", where, err)
	}
	j.emit(Event{Kind: Phase, Target: t, Label: res.Backup, Phase: PhaseMarkers})
	j.writeMarkers(fctx, log, dec, res.Key, res.Copies)
	res.setLocation()
	return copiesErr(where, res.Copies)
}

// setRun is what every stream of one set shares.
type setRun struct {
	t      Target
	where  string // the set in errors
	backup string
	tags   map[string]string // the retention class, on every object
	bar    *barrier
	n      int // streams
}

// storeStream puts stream i of a set through the stages, behind the barrier, and stores it at
// every destination (s.d); an error is the stream's failure before its upload began.
func (j *Job) storeStream(ctx context.Context, log zerolog.Logger, sr setRun, s *setStream, body io.Reader, i int) error {
	r, header, err := checkHeader(body, store.UnknownSize, sr.where+" "+s.name)
	if err != nil {
		return err
	}
	ds, err := j.stages(r, store.UnknownSize, sr.n)
	if err != nil {
		return fmt.Errorf("archive: encrypt %s %s: %w", sr.where, s.name, err)
	}
	defer ds.checked.stop()
	ds.stored.r = sr.bar.reader(ctx, i, s.name, ds.stored.r)
	s.header, s.ds = header, ds
	obj := store.Object{Key: s.key, Size: ds.size, ContentType: "application/octet-stream", Tags: sr.tags}
	s.d = j.upload(ctx, log, sr.t, sr.backup+" "+s.name, obj, ds.stored)
	return nil
}

// part is the manifest's record of a part.
func (s *setStream) part() catalog.Part {
	p := catalog.Part{Key: s.key, Bytes: s.ds.stored.n.Load(), SHA256: s.ds.stored.sum(), Tables: s.tables}
	if s.ds.plain != nil {
		p.PlaintextBytes, p.PlaintextSHA256 = s.ds.plain.n.Load(), s.ds.plain.sum()
	}
	if s.ds.checked != nil {
		p.Structure = s.ds.checked.summary
	}
	return p
}

// setCopies is the set's outcome at each destination: whole where every stream's copy is
// stored, failed where one is not, its other streams then taken back (or named) there.
func (j *Job) setCopies(ctx context.Context, streams []*setStream) []Copy {
	out := make([]Copy, len(j.Destinations))
	for k, d := range j.Destinations {
		c := streams[0].d.copies[k]
		var errs []error
		var stored []string
		for _, s := range streams {
			sc := s.d.copies[k]
			c.AlreadyArchived = c.AlreadyArchived && sc.AlreadyArchived
			switch {
			case sc.Err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", s.name, sc.Err))
			case !sc.AlreadyArchived:
				stored = append(stored, s.key)
			}
		}
		if len(errs) > 0 {
			c.Err = j.partialSet(ctx, d, stored, errors.Join(errs...))
		}
		out[k] = c
	}
	return out
}

// partialSet takes back the streams of a set stored at d when others failed there, and returns
// the copy's error, naming what stays where it cannot delete.
func (j *Job) partialSet(ctx context.Context, d Destination, stored []string, err error) error {
	if len(stored) == 0 {
		return err
	}
	rerr := j.takeBack(ctx, d, stored)
	if rerr == nil {
		return fmt.Errorf("%w; the set's %d other streams stored there were removed again (the next run dumps the database again)", err, len(stored))
	}
	return fmt.Errorf("%w; the set's other streams stay there without a manifest, which is not an archive (%w): %s; pgoffsite status reports them until they are deleted with credentials that may delete",
		err, rerr, d.Store.Location(stored[0])+" and beside it")
}

// logSet says, per stream and for the set, what was stored and how long it took.
func (j *Job) logSet(log zerolog.Logger, res *Result, streams []*setStream, took time.Duration) {
	var total int64
	for _, s := range streams {
		n := s.ds.stored.n.Load()
		total += n
		ev := log.Info().Str("stream", s.name).Int64("bytes", n).Str("duration", s.took.Round(time.Millisecond).String())
		if s.tables != nil {
			ev = ev.Int("tables", len(s.tables))
		}
		ev.Msg("stream stored")
	}
	log.Info().Int("streams", len(streams)).Int64("bytes", total).Str("duration", took.Round(time.Millisecond).String()).
		Msg("set stored: every stream read one snapshot")
}

// barrier holds each stream's end until every stream of the set has reached its own, and turns
// every end into the first failure when one stream fails.
type barrier struct {
	mu      sync.Mutex
	left    int
	arrived []bool
	all     chan struct{} // closed when every stream arrived
	failed  chan struct{} // closed at the first failure; err says which
	err     error
	stop    func()
}

func newBarrier(n int, stop func()) *barrier {
	return &barrier{left: n, arrived: make([]bool, n), all: make(chan struct{}), failed: make(chan struct{}), stop: stop}
}

// reader is stream i's reader r behind the barrier.
func (b *barrier) reader(ctx context.Context, i int, name string, r io.Reader) io.Reader {
	return &barrierReader{b: b, ctx: ctx, i: i, name: name, r: r}
}

// arrive records that stream i reached its end and waits for the others, or a failure.
func (b *barrier) arrive(ctx context.Context, i int) error {
	b.mu.Lock()
	if !b.arrived[i] {
		b.arrived[i] = true
		if b.left--; b.left == 0 {
			close(b.all)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-b.failed:
		return b.cause()
	case <-ctx.Done():
		b.fail(fmt.Errorf("the run was stopped, so none of the set is stored: %w", ctx.Err()))
		return b.cause()
	}
}

// streamFailed is the set's failure when the stream name failed with err.
func streamFailed(name string, err error) error {
	return fmt.Errorf("%s of the set failed, so none of it is stored: %w", name, err)
}

// fail records the set's first failure and stops the others' sources.
func (b *barrier) fail(err error) {
	b.mu.Lock()
	first := b.err == nil
	if first {
		b.err = err
		close(b.failed)
	}
	b.mu.Unlock()
	if first && b.stop != nil {
		b.stop()
	}
}

// done is stream i's uploads having returned: one that ended before the stream's end (every
// copy failed, err) fails the set.
func (b *barrier) done(i int, name string, err error) {
	b.mu.Lock()
	arrived := b.arrived[i]
	b.mu.Unlock()
	if !arrived {
		if err == nil {
			err = errors.New("its uploads ended before its end")
		}
		b.fail(streamFailed(name, err))
	}
}

// cause is the set's failure, nil while there is none.
func (b *barrier) cause() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

type barrierReader struct {
	b    *barrier
	ctx  context.Context
	i    int
	name string
	r    io.Reader
}

func (r *barrierReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	switch {
	case err == io.EOF:
		if werr := r.b.arrive(r.ctx, r.i); werr != nil {
			return n, werr
		}
	case err != nil:
		r.b.fail(streamFailed(r.name, err))
	}
	return n, err
}
