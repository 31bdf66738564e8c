package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// setSource yields a set of three streams, each a real dump: stream 0 and two parts. fail, when
// set, makes part 02 fail half-way, once stream 0 has been read to its end: the barrier must
// then hold stream 0's end back.
type setSource struct {
	body    []byte
	fail    bool
	stopped atomic.Int32
	first   chan struct{} // closed when stream 0 has been read to its end
}

var errPartKilled = errors.New("pg_dump was killed (killed)")

type eofSignal struct {
	r    io.Reader
	done chan struct{}
	once bool
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.once {
		e.once = true
		close(e.done)
	}
	return n, err
}

type failingHalfway struct {
	r     io.Reader
	left  int
	after chan struct{}
}

func (f *failingHalfway) Read(p []byte) (int, error) {
	if f.left <= 0 {
		<-f.after
		return 0, errPartKilled
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	return n, err
}

func (s *setSource) Open(ctx context.Context, t Target) (Backup, error) {
	s.first = make(chan struct{})
	b := Backup{Meta: catalog.Meta{App: "shop", Database: "DATABASE", Backup: "dump-0a1b2c3d", At: finished, Mode: "pg_dump",
		Origin: catalog.Origin{Source: "pg_dump", PgDump: &catalog.DumpOrigin{Args: []string{"--format=custom"}}}},
		Body: io.NopCloser(&eofSignal{r: bytes.NewReader(s.body), done: s.first}), Size: store.UnknownSize}
	b.Streams = &Streams{Snapshot: "00000003-00000002-1", Jobs: 3, Stop: func() { s.stopped.Add(1) }}
	for i := 1; i <= 2; i++ {
		var r io.Reader = bytes.NewReader(s.body)
		if s.fail && i == 2 {
			r = &failingHalfway{r: r, left: len(s.body) / 2, after: s.first}
		}
		b.Streams.Parts = append(b.Streams.Parts, Part{Body: io.NopCloser(r), Tables: []string{"public.t" + string(rune('0'+i))}})
	}
	return b, nil
}

// A stream failing fails the whole set: the streams already read to their end are held at the
// barrier and never committed, the source is told to stop, and the error names the stream.
func TestSetStreamFailureStoresNothing(t *testing.T) {
	body := realDump(t)
	j, _, mem, _ := newJob(t, body)
	src := &setSource{body: body, fail: true}
	j.Source = src
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "part 02 of the set failed, so none of it is stored") || !errors.Is(res.Err, errPartKilled) {
		t.Fatalf("err = %v", res.Err)
	}
	if mem.Len() != 0 {
		t.Errorf("%d objects stored", mem.Len())
	}
	if src.stopped.Load() == 0 {
		t.Error("the source's streams were not stopped")
	}
}

// A whole set: stream 0 at the dump key, the parts beside it, the manifest (version 2) last,
// listing each part's size, hash, tables and structure.
func TestSetStored(t *testing.T) {
	body := realDump(t)
	j, _, mem, _ := newJob(t, body)
	j.Source = &setSource{body: body}
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(mem.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
		t.Fatal(err)
	}
	if m.ManifestVersion != catalog.SetManifestVersion || m.Set == nil || m.Set.Jobs != 3 || len(m.Set.Parts) != 2 || m.SHA256 != res.SHA256 {
		t.Fatalf("manifest %+v", m)
	}
	for i, p := range m.Set.Parts {
		if p.Key != catalog.PartKey(res.Key, i+1) || !bytes.Equal(mem.Get(p.Key), body) || p.Bytes != int64(len(body)) || p.Structure == nil || len(p.Tables) != 1 {
			t.Errorf("part %d: %+v", i+1, p)
		}
	}
}

// failPart stores like its store but fails part 02's commit after reading it whole: a commit
// failing after the barrier opened.
type failPart struct{ store.Store }

var errCommit = errors.New("CompleteMultipartUpload: InternalError")

func (s failPart) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if strings.HasSuffix(obj.Key, ".part02") {
		_, _ = io.Copy(io.Discard, r)
		return errCommit
	}
	return s.Store.Put(ctx, obj, r)
}

// A part's commit failing at one destination after the others committed: there the set's
// other streams are removed again where the destination may delete, and named where it may
// not; no manifest is written there; the other destination holds the whole set.
func TestSetCommitFailsAtOneDestination(t *testing.T) {
	body := realDump(t)
	for _, canRemove := range []bool{true, false} {
		j, _, _, _ := newJob(t, body)
		j.Source = &setSource{body: body}
		bad, badDir := dirDestination(t)
		bad.Store = failPart{bad.Store}
		if !canRemove {
			bad.Remove = nil
		}
		good, goodDir := dirDestination(t)
		j.Destinations = []Destination{bad, good}
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err == nil || !errors.Is(res.Err, errCommit) || res.Copies[0].Err == nil || res.Copies[1].Err != nil {
			t.Fatalf("remove %v: err %v copies %+v", canRemove, res.Err, res.Copies)
		}
		exists := func(dir, key string) bool { _, err := os.Stat(filepath.Join(dir, key)); return err == nil }
		for _, k := range []string{res.Key, catalog.PartKey(res.Key, 1), catalog.PartKey(res.Key, 2), catalog.ManifestKey(res.Key)} {
			if !exists(goodDir, k) {
				t.Errorf("the whole destination lacks %s", k)
			}
		}
		if exists(badDir, catalog.ManifestKey(res.Key)) {
			t.Error("a manifest was written beside a partial set")
		}
		if exists(badDir, res.Key) == canRemove || exists(badDir, catalog.PartKey(res.Key, 1)) == canRemove {
			t.Errorf("remove %v: the partial set's streams: stream 0 %v, part 01 %v", canRemove, exists(badDir, res.Key), exists(badDir, catalog.PartKey(res.Key, 1)))
		}
		want := "were removed again"
		if !canRemove {
			want = "stay there without a manifest, which is not an archive"
		}
		if !strings.Contains(res.Err.Error(), want) {
			t.Errorf("err lacks %q: %v", want, res.Err)
		}
	}
}
