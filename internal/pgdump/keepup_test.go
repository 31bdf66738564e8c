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
	return sum
}

// When the workers fall a budget behind, the table they are on is checked for framing only and
// the check goes on without waiting, in every compression.
func TestKeepUpCutsWhatFallsBehind(t *testing.T) {
	for _, alg := range []string{"gzip", "lz4", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			b := withTables(shop(15, alg, true), 40000).bytes(t)
			checkKeptUp(t, b, slowWorkers(t, 4), "public.big0")
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
	b := withTables(shop(15, "gzip", true), 250000).bytes(t)
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
	a := withTables(shop(15, "gzip", true), 40000)
	good := a.bytes(t)
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
