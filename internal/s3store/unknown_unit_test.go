package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// The schedule for uploads of unknown size: with any part size the options allow, 10,000 parts
// hold S3's largest object, no part is outside S3's limits, and the first growEvery parts keep
// the configured size.
func TestUnknownSizeScheduleReachesFiveTiB(t *testing.T) {
	for _, base := range []int64{MinPartSize, MinPartSize + 1, DefaultPartSize, 100 * mib, maxPartSize} {
		var total int64
		prev := int64(0)
		for i := 0; i < maxParts; i++ {
			ps := unknownPartSize(i, growEvery, base)
			if ps < MinPartSize || ps > maxPartSize {
				t.Fatalf("base %d: part %d is %d bytes, outside S3's 5 MiB to 5 GiB", base, i, ps)
			}
			if ps < prev {
				t.Fatalf("base %d: part %d (%d bytes) is smaller than the one before (%d)", base, i, ps, prev)
			}
			if i < growEvery && ps != base {
				t.Fatalf("base %d: part %d grew to %d before part %d", base, i, ps, growEvery)
			}
			prev = ps
			total += ps
		}
		if total < maxObjectSize {
			t.Errorf("base %d: 10,000 parts hold %d bytes, less than 5 TiB (%d)", base, total, int64(maxObjectSize))
		}
		if got := unknownCapacity(maxParts, growEvery, base); got != total {
			t.Errorf("base %d: unknownCapacity = %d, the parts sum to %d", base, got, total)
		}
	}
	// Why not a rounder 1,000: with 5 MiB parts it would stop short of 5 TiB.
	if c := unknownCapacity(maxParts, 1000, MinPartSize); c >= maxObjectSize {
		t.Errorf("doubling every 1,000 parts holds %d bytes; the comment on growEvery is wrong", c)
	}
	// Parts grow late: at the defaults, the first 7 GiB keep 8 MiB parts, and no part is larger
	// than all the buffers the options allow (40 MiB) before 49 GiB (the figures on Put).
	if c := unknownCapacity(growEvery, growEvery, DefaultPartSize); c < 7<<30 {
		t.Errorf("the first %d parts hold only %d bytes", growEvery, c)
	}
	budget := int64(DefaultConcurrency+1) * DefaultPartSize
	i := 0
	for unknownPartSize(i, growEvery, DefaultPartSize) <= budget {
		i++
	}
	if c := unknownCapacity(i, growEvery, DefaultPartSize); c < 49<<30 {
		t.Errorf("a part larger than the %d MiB budget comes after only %d MiB", budget/mib, c/mib)
	}
}

func TestUnknownSizeObjects(t *testing.T) {
	const ps = MinPartSize
	cases := []struct {
		size  int
		parts int // 0: a single PutObject
	}{
		{0, 0}, {1, 0}, {ps - 1, 0}, {ps, 0}, {ps + 1, 2}, {3 * ps, 3}, {3*ps + 5, 4},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.size), func(t *testing.T) {
			f, client := newFakeS3(t)
			s := New(client, Options{Bucket: "b", PartSize: ps, Concurrency: 2})
			data := source(40, c.size)
			obj := store.Object{Key: "k", Size: store.UnknownSize, ContentType: "application/octet-stream"}
			if err := s.Put(context.Background(), obj, iotest.HalfReader(bytes.NewReader(data))); err != nil {
				t.Fatal(err)
			}
			got, h, ok := f.object("k")
			if !ok || !bytes.Equal(got, data) {
				t.Fatalf("object missing or different (%d bytes stored of %d)", len(got), len(data))
			}
			if h.Get("If-None-Match") != "*" {
				t.Error("final write not conditional")
			}
			if n := f.count("PUT part"); n != c.parts {
				t.Errorf("%d parts, want %d", n, c.parts)
			}
			if c.parts == 0 && f.count("POST create") != 0 {
				t.Error("multipart upload for an object within one part")
			}
			if f.openUploads() != 0 {
				t.Error("upload left open")
			}
		})
	}
}

// Parts double on schedule, and the buffers keep within (Concurrency+1) × PartSize: the parts in
// flight fall as the parts grow.
func TestUnknownSizePartsGrowWithinMemory(t *testing.T) {
	f, client := newFakeS3(t)
	f.discard = true
	f.partDelay = 50 * time.Millisecond
	const conc = 3
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: conc})
	s.growEvery = 6
	var pool *partPool
	s.poolHook = func(p *partPool) { pool = p }
	// 6 parts of 5 MiB, 6 of 10, 2 of 20 and 3 MiB more.
	const size = 6*5*mib + 6*10*mib + 2*20*mib + 3*mib
	src := io.LimitReader(mrand.NewChaCha8([32]byte{41}), size)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: store.UnknownSize}, src); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.object("k"); !ok {
		t.Fatal("object missing")
	}
	for i := 0; i < 15; i++ {
		want := unknownPartSize(i, 6, MinPartSize)
		if i == 14 {
			want = 3 * mib
		}
		if got := f.partSizes[i+1]; got != want {
			t.Errorf("part %d: %d bytes, want %d", i+1, got, want)
		}
	}
	if len(f.partSizes) != 15 {
		t.Errorf("%d parts, want 15", len(f.partSizes))
	}
	budget := int64(conc+1) * MinPartSize
	if pool.peak > budget {
		t.Errorf("buffers peaked at %d MiB, the options allow %d MiB", pool.peak/mib, budget/mib)
	}
	if f.maxInflight != conc {
		t.Errorf("at most %d parts in flight, want %d while parts are small", f.maxInflight, conc)
	}
}

// A part larger than the whole budget still goes, but alone: nothing else is held beside it.
func TestUnknownSizePartLargerThanBudgetGoesAlone(t *testing.T) {
	f, client := newFakeS3(t)
	f.discard = true
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: 1})
	s.growEvery = 1
	var pool *partPool
	s.poolHook = func(p *partPool) { pool = p }
	// Parts of 5, 10 and 20 MiB, the last ending the stream; the budget is 2 × 5 MiB.
	src := io.LimitReader(mrand.NewChaCha8([32]byte{42}), 35*mib)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: store.UnknownSize}, src); err != nil {
		t.Fatal(err)
	}
	if len(f.partSizes) != 3 || f.partSizes[3] != 20*mib {
		t.Fatalf("part sizes %v", f.partSizes)
	}
	if pool.peak != 20*mib {
		t.Errorf("buffers peaked at %d MiB, want the 20 MiB part alone", pool.peak/mib)
	}
}

// A stream longer than the schedule's parts hold is refused and the upload aborted.
func TestUnknownSizeBeyondLastPartAborts(t *testing.T) {
	for _, extra := range []int{0, 1} {
		f, client := newFakeS3(t)
		s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
		s.maxParts = 3
		data := source(43, 3*MinPartSize+extra)
		err := s.Put(context.Background(), store.Object{Key: "k", Size: store.UnknownSize}, bytes.NewReader(data))
		if extra == 0 {
			if err != nil {
				t.Fatalf("exactly 3 full parts: %v", err)
			}
			if got, _, _ := f.object("k"); !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			continue
		}
		if !errors.Is(err, errTooLarge) {
			t.Fatalf("one byte past the last part: err = %v", err)
		}
		if _, _, ok := f.object("k"); ok {
			t.Fatal("object visible")
		}
		if f.openUploads() != 0 || f.count("DELETE abort") != 1 || f.count("POST complete") != 0 {
			t.Fatal("upload not aborted")
		}
	}
}

func TestUnknownSizeSourceProblemsLeaveNothing(t *testing.T) {
	boom := errors.New("pg_dump: error: connection to server lost")
	data := source(44, 17*mib)
	cases := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		wantErr error
		created bool // a multipart upload was started (and must be aborted)
	}{
		{"error at once", func(context.CancelFunc) io.Reader { return iotest.ErrReader(boom) }, boom, false},
		{"error within the first part", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(boom))
		}, boom, false},
		{"error right after the first part", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:MinPartSize]), iotest.ErrReader(boom))
		}, boom, false},
		{"error midway", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:12*mib]), iotest.ErrReader(boom))
		}, boom, true},
		{"cancelled midway", func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:11*mib]), cancelReader{cancel}, bytes.NewReader(data[11*mib:]))
		}, context.Canceled, true},
		{"cancelled within the first part", func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:100]), cancelReader{cancel}, bytes.NewReader(data[100:]))
		}, context.Canceled, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, client := newFakeS3(t)
			s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := s.Put(ctx, store.Object{Key: "k", Size: store.UnknownSize}, tc.reader(cancel))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			f.nothingWritten(t, "k")
			if created := f.count("POST create") == 1; created != tc.created {
				t.Errorf("multipart upload created: %v, want %v", created, tc.created)
			}
			if tc.created && f.count("DELETE abort") != 1 {
				t.Error("upload not aborted")
			}
		})
	}
}

func TestUnknownSizeExistingObjectIsErrExists(t *testing.T) {
	for _, size := range []int{1000, 12 * mib} {
		f, client := newFakeS3(t)
		s := New(client, Options{Bucket: "b", PartSize: MinPartSize})
		f.objects["k"] = []byte("original")
		err := s.Put(context.Background(), store.Object{Key: "k", Size: store.UnknownSize}, bytes.NewReader(source(45, size)))
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: err = %v, want ErrExists", size, err)
		}
		if got, _, _ := f.object("k"); string(got) != "original" {
			t.Fatalf("size %d: original replaced", size)
		}
		if f.openUploads() != 0 {
			t.Fatalf("size %d: multipart upload left open", size)
		}
	}
}

func TestOtherNegativeSizesAreRefused(t *testing.T) {
	f, client := newFakeS3(t)
	s := New(client, Options{Bucket: "b"})
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: -2}, bytes.NewReader(nil)); err == nil {
		t.Fatal("size -2 accepted")
	}
	if n := len(f.requests); n != 0 {
		t.Fatalf("%d requests made", n)
	}
}

// The memory bound of a known size holds for an unknown one: (Concurrency+1) × PartSize.
func TestUnknownSizeMemoryIsBounded(t *testing.T) {
	f, client := newFakeS3(t)
	f.discard = true
	const conc = 2
	s := New(client, Options{Bucket: "b", PartSize: MinPartSize, Concurrency: conc})
	const size = 100 * mib
	src := io.LimitReader(mrand.NewChaCha8([32]byte{46}), size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := s.Put(context.Background(), store.Object{Key: "k", Size: store.UnknownSize}, src); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	limit := uint64((conc+1)*MinPartSize + 9*mib) // buffers, the part list, the HTTP machinery of 20 requests
	t.Logf("allocated %d MiB for a %d MiB object", allocated/mib, size/mib)
	if allocated > limit {
		t.Fatalf("allocated %d MiB, want at most %d MiB", allocated/mib, limit/mib)
	}
	if n := f.count("PUT part"); n != size/MinPartSize {
		t.Errorf("%d parts, want %d", n, size/MinPartSize)
	}
}
