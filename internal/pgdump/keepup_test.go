package pgdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// withTables puts tables of random hex rows at the front of shop's data, so that the slow part
// of a check comes first and shop's small tables follow it.
func withTables(a *archive, rows ...int) *archive {
	rng := rand.New(rand.NewSource(int64(len(rows))))
	var added []synEntry
	for i, n := range rows {
		lines := make([]string, n)
		var raw [24]byte
		for k := range lines {
			rng.Read(raw[:])
			lines[k] = fmt.Sprintf("%d\t%x", k, raw)
		}
		name := fmt.Sprintf("big%d", i)
		added = append(added, synEntry{Entry: Entry{DumpID: 1000 + i, HadDumper: true, TableOID: "0", OID: fmt.Sprint(20000 + i),
			Tag: name, Desc: "TABLE DATA", Section: SectionData, Namespace: "public", Owner: "u1",
			CopyStmt: "COPY public." + name + " (id, h) FROM stdin;\n"}, data: copyText(lines...)})
	}
	a.entries = append(a.entries[:2:2], append(added, a.entries[2:]...)...)
	return a
}

// slowWorkers holds every worker back until the check cuts a job, as a core slower than the
// stream would, with a check that is always past its allowance (as a Checker says once its
// writer has waited too long); segs is the segment budget (0 for the default).
func slowWorkers(t testing.TB, segs int) Options {
	gate := make(chan struct{})
	var once sync.Once
	return Options{
		KeepUp: true,
		behind: func() bool { return true },
		segs:   segs,
		beforeDecode: func() {
			select {
			case <-gate:
			case <-time.After(10 * time.Second):
				t.Error("the check waited 10 s for a worker instead of cutting its job")
			}
		},
		onCut: func() { once.Do(func() { close(gate) }) },
	}
}

// checkKeptUp checks b keeping up with slow workers, and compares the result with a full check:
// the tables in framingOnly must be checked for framing only, the rest exactly as Check does.
func checkKeptUp(t *testing.T, b []byte, o Options, framingOnly ...string) Summary {
	t.Helper()
	full, err := Check(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("full check: %v", err)
	}
	sum, err := CheckWith(bytes.NewReader(b), o)
	if err != nil {
		t.Fatalf("keeping up: %v", err)
	}
	if len(sum.Tables) != len(full.Tables) {
		t.Fatalf("tables = %v, want %v", sum.Tables, full.Tables)
	}
	cut := map[string]bool{}
	for _, name := range sum.FramingOnly() {
		cut[name] = true
	}
	for _, name := range framingOnly {
		if !cut[name] {
			t.Errorf("%s was decompressed; want framing only (framing only: %v)", name, sum.FramingOnly())
		}
	}
	for i, tb := range sum.Tables {
		want := full.Tables[i]
		if tb.FramingOnly {
			want.Rows, want.Bytes, want.FramingOnly = -1, -1, true
		}
		if tb != want {
			t.Errorf("table %d = %+v, want %+v", i, tb, want)
		}
	}
	if sum.DataBlocks != full.DataBlocks || sum.Bytes != full.Bytes || sum.LargeObjects != full.LargeObjects {
		t.Errorf("summary = %+v\nwant as %+v", sum, full)
	}
	// The compressed data is all read, cut or not; what was cut was not all decompressed.
	if sum.CompressedDataBytes != full.CompressedDataBytes || full.InflatedDataBytes != full.CompressedDataBytes {
		t.Errorf("compressed data bytes = %d keeping up, %d (%d inflated) in a full check; want the same",
			sum.CompressedDataBytes, full.CompressedDataBytes, full.InflatedDataBytes)
	}
	if cutSome := len(cut) > 0 || sum.OtherFramingOnly > 0; cutSome && sum.InflatedDataBytes >= sum.CompressedDataBytes ||
		!cutSome && sum.InflatedDataBytes != sum.CompressedDataBytes || sum.InflatedDataBytes < 0 {
		t.Errorf("inflated %d of %d compressed data bytes, with %v and %d other data framing only",
			sum.InflatedDataBytes, sum.CompressedDataBytes, sum.FramingOnly(), sum.OtherFramingOnly)
	}
	return sum
}

// When the workers fall a budget behind, the table they are on is checked for framing only and
// the check goes on without waiting, in every compression.
func TestKeepUpCutsWhatFallsBehind(t *testing.T) {
	for _, alg := range []string{"gzip", "lz4", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			_, b := behindArchive(t, alg)
			checkKeptUp(t, b, slowWorkers(t, 4), "public.big0")
		})
	}
}

// Tables cut before their worker started decoding them, and large objects cut before their first
// byte (the check is always behind), count as not decompressed at all; the rest of the archive
// was decompressed whole.
func TestKeepUpCountsWhatWasInflated(t *testing.T) {
	for _, alg := range []string{"gzip", "lz4", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			a, b := behindArchive(t, alg)
			sum := checkKeptUp(t, b, slowWorkers(t, 4), "public.big0")
			if sum.OtherFramingOnly != 3 {
				t.Fatalf("%d large objects framing only, want all 3", sum.OtherFramingOnly)
			}
			var cut int64
			for _, e := range a.entries {
				if e.Desc == "BLOBS" {
					cut += a.packed[e.DumpID]
				}
				for _, name := range sum.FramingOnly() {
					if e.Desc == "TABLE DATA" && e.Namespace+"."+e.Tag == name {
						cut += a.packed[e.DumpID]
					}
				}
			}
			if want := a.packedData(); sum.CompressedDataBytes != want || sum.InflatedDataBytes != want-cut {
				t.Errorf("compressed data bytes %d, inflated %d; want %d and %d (%v cut before they started)",
					sum.CompressedDataBytes, sum.InflatedDataBytes, want, want-cut, sum.FramingOnly())
			}
		})
	}
}

// A table cut while its worker is decoding it counts what the worker had decoded: the check
// cuts once the worker has taken its third segment, and the worker goes no further until then.
func TestKeepUpCountsATableCutMidway(t *testing.T) {
	for _, alg := range []string{"gzip", "lz4", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			a, b := behindArchive(t, alg)
			var taken atomic.Int64
			gate := make(chan struct{})
			var once sync.Once
			o := Options{KeepUp: true, segs: 4,
				behind: func() bool { return taken.Load() >= 3 },
				takeSeg: func() {
					if taken.Add(1) == 3 {
						select {
						case <-gate:
						case <-time.After(10 * time.Second):
							t.Error("the check waited 10 s for a worker instead of cutting its job")
						}
					}
				},
				onCut: func() { once.Do(func() { close(gate) }) },
			}
			sum := checkKeptUp(t, b, o, "public.big0")
			big0, rest := a.packed[1000], a.packedData()-a.packed[1000]
			if rest >= 2*segSize || big0 <= 3*segSize {
				t.Fatalf("the archive proves nothing: big0 has %d compressed bytes, the rest %d", big0, rest)
			}
			// Two segments went through the decoder before the worker asked for the third, and it
			// got no more than the third before the cut.
			if sum.InflatedDataBytes < 2*segSize || sum.InflatedDataBytes > rest+3*segSize {
				t.Errorf("inflated %d of %d compressed data bytes; want between %d and %d", sum.InflatedDataBytes,
					sum.CompressedDataBytes, 2*segSize, rest+3*segSize)
			}
		})
	}
}

// Workers a whole queue of jobs behind: the next table is cut before it starts.
func TestKeepUpCutsWhenJobsQueueUp(t *testing.T) {
	rows := make([]int, 80)
	for i := range rows {
		rows[i] = 10
	}
	b := withTables(shop(15, "gzip", true), rows...).bytes(t)
	sum := checkKeptUp(t, b, slowWorkers(t, 0))
	if len(sum.FramingOnly()) == 0 {
		t.Error("no table was cut")
	}
}

// A worker that has not taken its job while the job's queue fills: the job is cut.
func TestKeepUpCutsAFullJob(t *testing.T) {
	_, b := bigArchive(t)
	checkKeptUp(t, b, slowWorkers(t, 0), "public.big0")
}

// Without pressure keeping up changes nothing.
func TestKeepUpWithoutPressure(t *testing.T) {
	for _, f := range formats() {
		b := shop(f.vmin, f.alg, true).bytes(t)
		want, err := Check(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := CheckWith(bytes.NewReader(b), Options{KeepUp: true})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("1.%d %s: got %+v, %v\nwant %+v", f.vmin, f.alg, got, err, want)
		}
	}
}

// chunks returns where the chunk lengths of the data block at start are.
func chunks(t *testing.T, b []byte, start int) []int {
	var at []int
	for p := start + 1 + 5; ; {
		n := int(binary.LittleEndian.Uint32(b[p+1:]))
		if b[p] != 0 {
			t.Fatalf("negative chunk length at %d", p)
		}
		if n == 0 {
			return at
		}
		at = append(at, p)
		p += 5 + n
	}
}

// What a cut table still gets: its framing is read to the end, so truncation, a bad chunk
// length and trailing bytes fail the check; damage inside its compressed data does not.
func TestKeepUpChecksFraming(t *testing.T) {
	a, good := behindArchive(t, "gzip")
	at := chunks(t, good, a.blockAt[1000])
	late := at[len(at)-3] // far past where the cut happens
	damage := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }

	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:late+100], "ends"},
		{"negative chunk length", damage(func(b []byte) []byte { b[late] = 1; return b }), "chunk length"},
		{"chunk length too long", damage(func(b []byte) []byte { b[late+2] ^= 0x40; return b }), ""},
		{"trailing garbage", append(append([]byte(nil), good...), "<html>"...), "trailing garbage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckWith(bytes.NewReader(c.b), slowWorkers(t, 4))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
	}

	t.Run("flipped compressed byte", func(t *testing.T) {
		b := damage(func(b []byte) []byte { b[late+5+1000] ^= 0x10; return b })
		if _, err := Check(bytes.NewReader(b)); err == nil {
			t.Fatal("a full check passed a flipped byte")
		}
		sum, err := CheckWith(bytes.NewReader(b), slowWorkers(t, 4))
		if err != nil || !sum.Tables[0].FramingOnly {
			t.Fatalf("keeping up: %v, %+v; want no error, the table checked for framing only", err, sum.Tables[0])
		}
	})
}

// The errCut a worker sees is not damage, whatever decoder reads it.
func TestCutIsNotDamage(t *testing.T) {
	for _, alg := range []string{"gzip", "lz4", "zstd"} {
		d := decodersPool.Get().(*decoders)
		j := &job{in: make(chan []byte)}
		j.cut.Store(true)
		_, _, err := d.decodeStream(alg, &segReader{j: j}, true)
		if !errors.Is(err, errCut) {
			t.Errorf("%s: %v", alg, err)
		}
		d.release()
	}
}

// Large objects are decoded on the reading goroutine: keeping up with input that waits for the
// check, each is read for framing only and counted as such. With nothing waiting, or nothing to
// decompress, every one is decoded.
func TestKeepUpSkipsLargeObjectsWhenBehind(t *testing.T) {
	behind := func() bool { return true }
	for _, alg := range []string{"none", "gzip", "lz4", "zstd"} {
		a := shop(15, alg, true)
		b := a.bytes(t)
		full, err := Check(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := CheckWith(bytes.NewReader(b), Options{KeepUp: true, behind: behind})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		want := 3
		if alg == "none" {
			want = 0
		}
		if sum.LargeObjects != 3 || sum.OtherFramingOnly != want || !reflect.DeepEqual(sum.Tables, full.Tables) ||
			(want > 0) != (sum.DataBytes < full.DataBytes) {
			t.Errorf("%s: summary %+v\nwant as %+v with %d large objects framing only", alg, sum, full, want)
		}
		// Each large object is cut before its first byte is decoded: none of it counts as
		// decompressed. Without compression all of it is read.
		var los int64
		for _, e := range a.entries {
			if e.Desc == "BLOBS" && alg != "none" {
				los += a.packed[e.DumpID]
			}
		}
		if sum.CompressedDataBytes != full.CompressedDataBytes || sum.InflatedDataBytes != full.InflatedDataBytes-los {
			t.Errorf("%s: compressed data bytes %d, inflated %d; want %d and %d", alg, sum.CompressedDataBytes,
				sum.InflatedDataBytes, full.CompressedDataBytes, full.InflatedDataBytes-los)
		}
		// With nothing waiting for the check, every large object is decoded.
		if sum, err := CheckWith(bytes.NewReader(b), Options{KeepUp: true}); err != nil || sum.OtherFramingOnly != 0 {
			t.Errorf("%s keeping up, nothing waiting: %d framing only, %v", alg, sum.OtherFramingOnly, err)
		}

		// A large object's framing is still checked: cut inside the first one's data (after the
		// block's type and id, the object's OID and its first chunk's length).
		blobs := -1
		for _, e := range a.entries {
			if e.Desc == "BLOBS" {
				blobs = a.blockAt[e.DumpID]
			}
		}
		cut := blobs + 1 + 5 + 5 + 5 + 3
		if _, err := CheckWith(bytes.NewReader(b[:cut]), Options{KeepUp: true, behind: behind}); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: truncated inside a large object: %v", alg, err)
		}
	}
}

// behind holds, per compression, shop with a table of 40,000 rows in front: big enough for
// a check with a budget of four segments to fall behind on it. Built once for the tests that
// share it, as building is a good part of their time under -race; they only read it.
var behind struct {
	sync.Mutex
	a map[string]*archive
	b map[string][]byte
}

func behindArchive(t *testing.T, alg string) (*archive, []byte) {
	behind.Lock()
	defer behind.Unlock()
	if behind.b[alg] == nil {
		if behind.a == nil {
			behind.a, behind.b = map[string]*archive{}, map[string][]byte{}
		}
		a := withTables(shop(15, alg, true), 40000)
		behind.a[alg], behind.b[alg] = a, a.bytes(t)
	}
	return behind.a[alg], behind.b[alg]
}

var big struct {
	once sync.Once
	a    *archive
	b    []byte
}

// bigArchive is shop with a table of 250,000 rows in front: about 7 MB, more than every queue of
// a check holds. Built once, as it takes a while under -race.
func bigArchive(t *testing.T) (*archive, []byte) {
	big.once.Do(func() {
		big.a = withTables(shop(15, "gzip", true), 250000)
		big.b = big.a.bytes(t)
	})
	if big.b == nil {
		t.Fatal("building the archive failed")
	}
	return big.a, big.b
}

// zeroInside zeroes n bytes in the middle of a chunk of the data block at start, away from any
// chunk length, so only decompression can find the damage.
func zeroInside(t *testing.T, good []byte, start, n int) []byte {
	t.Helper()
	at := chunks(t, good, start)
	for _, p := range at[len(at)/2:] {
		if size := int(binary.LittleEndian.Uint32(good[p+1:])); size >= 2*n+200 {
			b := append([]byte(nil), good...)
			clear(b[p+5+100 : p+5+100+n])
			return b
		}
	}
	t.Fatal("no chunk long enough to damage")
	return nil
}

// writeAll feeds b to a Checker in one Write, as a range of the download arrives, and returns
// its result.
func writeAll(t *testing.T, b []byte, o Options) (*Checker, Summary, error) {
	t.Helper()
	c := NewChecker(o)
	_, werr := c.Write(b)
	sum, err := c.Close()
	if err == nil && werr != nil {
		t.Fatalf("Write failed (%v) but the check did not", werr)
	}
	return c, sum, err
}

// A burst (a whole range of the download at once, bigger than every queue) makes the writer wait
// a moment for the workers, and nothing more: no table is cut, even in an archive big enough to be
// cut at all.
func TestCheckerBurstIsNotCut(t *testing.T) {
	_, b := bigArchive(t)
	full, err := Check(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// Far more than a moment, so a slow machine under -race does not cut either.
	o := Options{KeepUp: true, Size: 1 << 30, Allowance: func(time.Duration) time.Duration { return time.Minute }}
	_, sum, err := writeAll(t, b, o)
	if err != nil || !reflect.DeepEqual(sum, full) {
		t.Fatalf("got %+v, %v (framing only: %v)\nwant %+v", sum, err, sum.FramingOnly(), full)
	}
}

// An archive under FullCheckBelow is decompressed whole even when the check holds the writer back
// for far longer than its allowance; damage inside a table's compressed data fails it, naming the
// table. Past FullCheckBelow the same check cuts the table.
func TestCheckerDecompressesSmallArchivesWhole(t *testing.T) {
	a, good := bigArchive(t)
	bad := zeroInside(t, good, a.blockAt[1000], 64)
	slow := func(size int64) Options {
		return Options{KeepUp: true, Size: size, segs: 4,
			Allowance:    func(time.Duration) time.Duration { return 0 },
			beforeDecode: func() { time.Sleep(50 * time.Millisecond) }} // a slow core
	}
	c, sum, err := writeAll(t, good, slow(int64(len(good))))
	if err != nil || len(sum.FramingOnly()) != 0 || sum.Tables[0].Rows != 250000 {
		t.Fatalf("small archive: %v, framing only %v, %+v", err, sum.FramingOnly(), sum.Tables[0])
	}
	if want := a.packedData(); sum.CompressedDataBytes != want || sum.InflatedDataBytes != want {
		t.Errorf("small archive: inflated %d of %d compressed data bytes; want all %d", sum.InflatedDataBytes, sum.CompressedDataBytes, want)
	}
	if c.Held() == 0 {
		t.Error("the writer never waited: the check was not behind, and the test proves nothing")
	}
	_, _, err = writeAll(t, bad, slow(int64(len(bad))))
	if err == nil || !strings.Contains(err.Error(), "table public.big0") {
		t.Fatalf("64 zeroed bytes in a small archive: err = %v, want one naming table public.big0", err)
	}
	if _, sum, err := writeAll(t, bad, slow(FullCheckBelow)); err != nil || !sum.Tables[0].FramingOnly {
		t.Fatalf("the same archive claimed to be %d bytes: %v, %+v; want the table cut", FullCheckBelow, err, sum.Tables[0])
	} else if sum.CompressedDataBytes != a.packedData() || sum.InflatedDataBytes >= sum.CompressedDataBytes {
		t.Errorf("the same archive claimed to be %d bytes: inflated %d of %d compressed data bytes; want less than all %d",
			FullCheckBelow, sum.InflatedDataBytes, sum.CompressedDataBytes, a.packedData())
	}
}

// An archive big enough to cut, whose decompression truly falls behind (workers that do not move
// until something is cut): the table is cut once the writer has waited its allowance, so the
// transfer is held back for about that long, not for the whole decompression.
func TestCheckerCutsWhenBehindInTime(t *testing.T) {
	_, b := bigArchive(t)
	const allowance = 100 * time.Millisecond
	o := slowWorkers(t, 4)
	o.behind = nil // the Checker's own measure
	o.Size = 1 << 30
	o.Allowance = func(time.Duration) time.Duration { return allowance }
	c, sum, err := writeAll(t, b, o)
	if err != nil || !sum.Tables[0].FramingOnly {
		t.Fatalf("%v, %+v; want public.big0 cut", err, sum.Tables[0])
	}
	if held := c.Held(); held < allowance || held > allowance+2*time.Second {
		t.Errorf("the writer waited %v in all; want about the allowance, %v", held, allowance)
	}
}

// The allowance: 25 ms, plus 2% of the time the check has run.
func TestDefaultAllowance(t *testing.T) {
	for elapsed, want := range map[time.Duration]time.Duration{0: 25 * time.Millisecond, time.Minute: 1225 * time.Millisecond, time.Hour: 72025 * time.Millisecond} {
		if got := DefaultAllowance(elapsed); got != want {
			t.Errorf("DefaultAllowance(%v) = %v, want %v", elapsed, got, want)
		}
	}
}
