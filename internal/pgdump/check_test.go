package pgdump

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// formats lists every format version and compression pg_dump 9.5 … 17 can write.
func formats() []struct {
	vmin byte
	alg  string
} {
	var fs []struct {
		vmin byte
		alg  string
	}
	for vmin := byte(12); vmin <= 16; vmin++ {
		algs := []string{"none", "gzip"}
		if vmin >= 15 {
			algs = append(algs, "lz4", "zstd")
		}
		for _, alg := range algs {
			fs = append(fs, struct {
				vmin byte
				alg  string
			}{vmin, alg})
		}
	}
	return fs
}

func wantTables(a *archive) []Table {
	want := append([]Table(nil), shopTables...)
	i := 0
	for _, e := range a.entries {
		if e.Desc == "TABLE DATA" {
			want[i].Bytes = int64(len(e.data))
			i++
		}
	}
	return want
}

func TestCheckFormats(t *testing.T) {
	for _, f := range formats() {
		for _, offsets := range []bool{true, false} {
			t.Run(fmt.Sprintf("1.%d/%s/offsets=%v", f.vmin, f.alg, offsets), func(t *testing.T) {
				a := shop(f.vmin, f.alg, offsets)
				b := a.bytes(t)
				sum, err := Check(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := sum.Tables, wantTables(a); !reflect.DeepEqual(got, want) {
					t.Errorf("tables:\n got %v\nwant %v", got, want)
				}
				blobs, blocks := 1, 6
				if f.vmin >= 16 {
					blobs, blocks = 2, 7
				}
				if sum.LargeObjects != 3 || sum.DataBlocks != blocks || sum.CountsByDesc["BLOBS"] != blobs ||
					sum.Entries != len(a.entries) || sum.Bytes != int64(len(b)) || sum.CountsByDesc["TABLE DATA"] != 5 {
					t.Errorf("summary = %+v", sum)
				}
				if sum.Header.Compression != f.alg || sum.Header.FormatVersion != fmt.Sprintf("1.%d.0", f.vmin) {
					t.Errorf("header = %+v", sum.Header)
				}
				if want := int64(5+12000) + sumData(a); sum.DataBytes != want {
					t.Errorf("data bytes = %d, want %d", sum.DataBytes, want)
				}
				// A full check decompresses all the compressed data; without compression, the
				// data is its own compressed form.
				want := a.packedData()
				if f.alg == "none" {
					want = sum.DataBytes
				}
				if sum.CompressedDataBytes != want || sum.InflatedDataBytes != want || sum.InflatedPercent() != 100 {
					t.Errorf("compressed data bytes = %d, inflated %d (%.1f%%); want both %d", sum.CompressedDataBytes,
						sum.InflatedDataBytes, sum.InflatedPercent(), want)
				}
			})
		}
	}
}

func sumData(a *archive) (n int64) {
	for _, e := range a.entries {
		n += int64(len(e.data))
	}
	return n
}

// The Checker, fed in pieces of any size, finds what Check finds.
func TestCheckerMatchesCheck(t *testing.T) {
	for _, f := range formats() {
		a := shop(f.vmin, f.alg, f.vmin%2 == 0)
		b := a.bytes(t)
		want, err := Check(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, piece := range []int{1, 7, 4096, queueBufSize - 1, queueBufSize + 1, len(b)} {
			c := NewChecker(Options{})
			for rest := b; len(rest) > 0; {
				k := min(piece, len(rest))
				if n, err := c.Write(rest[:k]); n != k || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				rest = rest[k:]
			}
			got, err := c.Close()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("1.%d %s pieces of %d: got %+v, %v\nwant %+v", f.vmin, f.alg, piece, got, err, want)
			}
		}
	}
}

// Once the check has failed, Write reports it, so a tee stops the copy.
func TestCheckerStopsWriter(t *testing.T) {
	b := shop(14, "gzip", true).bytes(t)
	b[len(b)/2] ^= 0x55
	c := NewChecker(Options{})
	_, err := io.Copy(c, io.TeeReader(bytes.NewReader(bytes.Repeat(b, 200)), io.Discard))
	if err == nil {
		// The damage may be found only after the last Write; Close must still report it.
		t.Log("the check failed after the last write")
	}
	_, cerr := c.Close()
	if cerr == nil || (err != nil && err.Error() != cerr.Error()) {
		t.Fatalf("Write error %v, Close error %v", err, cerr)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestReadTOC(t *testing.T) {
	for _, f := range formats() {
		a := shop(f.vmin, f.alg, true)
		b := a.bytes(t)
		h, entries, err := ReadTOC(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if h.DumpVersion == "" || len(entries) != len(a.entries) {
			t.Fatalf("header %+v, %d entries", h, len(entries))
		}
		for i, e := range entries {
			want := a.entries[i].Entry
			want.DataState = DataNone
			if want.HadDumper {
				want.DataState, want.Offset = DataPosSet, int64(a.blockAt[want.DumpID])
			}
			if f.vmin < 16 {
				want.RelKind = 0
			}
			if f.vmin < 14 {
				want.TableAM = ""
			}
			if !reflect.DeepEqual(e, want) {
				t.Errorf("1.%d entry %d:\n got %+v\nwant %+v", f.vmin, i, e, want)
			}
		}
	}
}

// Cutting the archive anywhere is reported as a truncation.
func TestCheckTruncated(t *testing.T) {
	for _, f := range formats() {
		for _, offsets := range []bool{true, false} {
			a := shop(f.vmin, f.alg, offsets)
			b := a.bytes(t)
			// Every cut in the header, TOC and first blocks, and around every block's start; a
			// sample of some 400 after (each check reads up to its cut: a denser sample made the
			// test take minutes under the race detector on a busy machine).
			stride := max(17, (len(b)-a.tocEnd)/400) | 1
			nearBlock := func(cut int) bool {
				for _, at := range a.blockAt {
					if cut >= at-16 && cut <= at+16 {
						return true
					}
				}
				return false
			}
			for cut := 0; cut < len(b); cut++ {
				if cut > a.tocEnd+600 && cut%stride != 0 && !nearBlock(cut) {
					continue
				}
				_, err := Check(bytes.NewReader(b[:cut]))
				switch {
				case cut < len(Magic):
					if !errors.Is(err, ErrNotArchive) {
						t.Fatalf("1.%d %s cut at %d: %v", f.vmin, f.alg, cut, err)
					}
				case !errors.Is(err, ErrTruncated):
					t.Fatalf("1.%d %s offsets=%v cut at %d of %d: %v", f.vmin, f.alg, offsets, cut, len(b), err)
				}
			}
		}
	}
}

func TestCheckTrailingGarbage(t *testing.T) {
	for _, tail := range [][]byte{{0}, {1}, {3, 0, 1, 0, 0, 0}, []byte("<html>"), make([]byte, 100000)} {
		b := append(shop(14, "gzip", false).bytes(t), tail...)
		_, err := Check(bytes.NewReader(b))
		if err == nil || !strings.Contains(err.Error(), "trailing garbage") {
			t.Errorf("tail %q: %v", tail[:min(len(tail), 8)], err)
		}
	}
}

// A flipped byte in gzip data fails the check wherever zlib itself can tell: Adler-32 is weak
// enough that a rare flip which permutes digits decodes cleanly, for pg_restore too.
func TestCheckFlippedGzipData(t *testing.T) {
	a := shop(15, "gzip", true)
	b := a.bytes(t)
	var id int
	for _, e := range a.entries {
		if e.Tag == "invoices" && e.Desc == "TABLE DATA" {
			id = e.DumpID
		}
	}
	start := a.blockAt[id]
	end := len(b)
	for _, at := range a.blockAt {
		if at > start && at < end {
			end = at
		}
	}
	// zlibAccepts decodes the block's chunks as pg_restore would.
	zlibAccepts := func(c []byte) bool {
		var comp []byte
		for pos := start + 6; pos+5 <= len(c); {
			n := int(c[pos+1]) | int(c[pos+2])<<8 | int(c[pos+3])<<16 | int(c[pos+4])<<24
			pos += 5
			if n == 0 || c[pos-5] != 0 || pos+n > len(c) {
				break
			}
			comp = append(comp, c[pos:pos+n]...)
			pos += n
		}
		zr, err := zlib.NewReader(bytes.NewReader(comp))
		if err != nil {
			return false
		}
		_, err = io.Copy(io.Discard, zr)
		return err == nil
	}
	collisions := 0
	// Every byte of the block's head (its id, the first chunk's length), then one in about six:
	// each check decompresses the whole archive, and under the race detector on a busy machine
	// one in two took minutes.
	step := func(i int) int {
		if i < start+64 {
			return 1
		}
		return 3 + i%7
	}
	for i := start; i < end; i += step(i) {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		_, err := Check(bytes.NewReader(c))
		if err == nil {
			if !zlibAccepts(c) {
				t.Fatalf("flipped byte %d of the block at %d..%d: no error", i, start, end)
			}
			collisions++
			continue
		}
		if i > start+20 && !strings.Contains(err.Error(), "table billing.invoices") {
			t.Fatalf("flipped byte %d: error does not name the table: %v", i, err)
		}
	}
	if collisions > 10 {
		t.Errorf("%d flips of %d went unnoticed", collisions, end-start)
	}
	c := bytes.Clone(b)
	c[start+(end-start)/2] ^= 0x10
	_, err := Check(bytes.NewReader(c))
	t.Logf("example: %v", err)
	want := fmt.Sprintf("pgdump: data block for table billing.invoices (dump id %d) at byte %d: gzip: ", id, start)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", err, want)
	}
}

// A flipped byte in the TOC either fails the check or changes only what nothing can verify:
// the contents of a string, the dump id of an entry without data, an offset pg_restore ignores.
func TestCheckFlippedTOC(t *testing.T) {
	for _, f := range []struct {
		vmin    byte
		offsets bool
	}{{14, true}, {14, false}, {16, true}} {
		a := shop(f.vmin, "gzip", f.offsets)
		b := a.bytes(t)
		_, orig, err := ReadTOC(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		inContents := func(i int) bool {
			for _, r := range a.contents {
				if i >= r[0] && i < r[1] {
					return true
				}
			}
			return false
		}
		accepted := 0
		for i := a.entryAt[0] - 5; i < a.tocEnd; i++ {
			c := bytes.Clone(b)
			c[i] ^= 0xff
			if _, err := Check(bytes.NewReader(c)); err != nil {
				continue
			}
			accepted++
			_, got, err := ReadTOC(bytes.NewReader(c))
			if err != nil || len(got) != len(orig) {
				t.Fatalf("1.%d byte %d: Check accepts what ReadTOC refuses: %v", f.vmin, i, err)
			}
			for j := range got {
				g, o := got[j], orig[j]
				if !o.HadDumper {
					g.DumpID = o.DumpID
				}
				if o.DataState != DataPosSet {
					g.Offset = o.Offset
				}
				if inContents(i) {
					g.Tag, g.Desc, g.Defn, g.DropStmt, g.CopyStmt = o.Tag, o.Desc, o.Defn, o.DropStmt, o.CopyStmt
					g.Namespace, g.Tablespace, g.TableAM, g.Owner = o.Namespace, o.Tablespace, o.TableAM, o.Owner
				}
				if !reflect.DeepEqual(g, o) {
					t.Fatalf("1.%d offsets=%v: flipping byte %d of entry %d went unnoticed:\n got %+v\nwant %+v", f.vmin, f.offsets, i, j, got[j], o)
				}
			}
		}
		t.Logf("1.%d offsets=%v: %d of %d TOC bytes can change unnoticed", f.vmin, f.offsets, accepted, a.tocEnd-a.entryAt[0]+5)
	}
}

func TestCheckRefuses(t *testing.T) {
	a := shop(14, "none", true)
	b := a.bytes(t)
	ordersData := a.entries[3]
	if ordersData.Tag != "orders" || ordersData.Desc != "TABLE DATA" {
		t.Fatalf("entry 3 is %s %s", ordersData.Desc, ordersData.Tag)
	}
	at := a.blockAt[ordersData.DumpID]
	// A data block whose header names another entry.
	swap := func(id int) []byte {
		c := bytes.Clone(b)
		c[at+2] = byte(id)
		return c
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"block for an entry without data", swap(1), "dump id 1, which has no data in the TOC"},
		{"block for an unknown entry", swap(200), "dump id 200, which has no data in the TOC"},
		{"unknown block type", func() []byte { c := bytes.Clone(b); c[at] = 2; return c }(), "unknown data block type 2"},
		{"blobs block for table data", func() []byte { c := bytes.Clone(b); c[at] = 3; return c }(), "has type 3, not 1"},
		{"negative chunk length", func() []byte { c := bytes.Clone(b); c[at+6] = 1; return c }(), "chunk length -"},
		{"offset points elsewhere", func() []byte {
			c := bytes.Clone(b)
			copy(c[at:], bytes.Repeat([]byte{0}, 0)) // keep the block, move the TOC's idea of it
			pos := bytes.Index(c, []byte{DataPosSet, byte(at), byte(at >> 8)})
			c[pos+1]++
			return c
		}(), "but the TOC says byte"},
		{"TOC offset inside the TOC", func() []byte {
			c := bytes.Clone(b)
			pos := bytes.Index(c, []byte{DataPosSet, byte(at), byte(at >> 8)})
			c[pos+1], c[pos+2] = 10, 0
			return c
		}(), "inside the header or TOC"},
		{"data block twice", func() []byte {
			end := len(b)
			for _, p := range a.blockAt {
				if p > at && p < end {
					end = p
				}
			}
			var c []byte
			c = append(c, b[:end]...)
			c = append(c, b[at:end]...)
			return append(c, b[end:]...)
		}(), "second data block for table public.orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Lengths read from the archive never decide how much memory is allocated.
func TestCheckDoesNotTrustLengths(t *testing.T) {
	huge := func(patch func(e *enc)) []byte {
		a := &archive{vmin: 14, alg: "none", level: 0}
		var e enc
		a.header(&e)
		patch(&e)
		return e.Bytes()
	}
	inputs := map[string][]byte{
		"entry count": huge(func(e *enc) { e.int(1<<28 - 1) }),
		"string length": huge(func(e *enc) {
			e.int(1)
			e.int(1)
			e.int(0)
			e.str("0")
			e.str("1")
			e.int(1<<31 - 1)
			e.WriteString("abc")
		}),
		"chunk length": func() []byte {
			a := shop(14, "none", false)
			b := a.bytes(t)
			at := a.blockAt[a.entries[3].DumpID]
			c := bytes.Clone(b[:at+6])
			c = append(c, 0, 0xff, 0xff, 0xff, 0x7f)
			return append(c, "some data"...)
		}(),
	}
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Check(bytes.NewReader(in))
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
			t.Errorf("%s: Check allocated %d bytes for a %d-byte input", name, grown, len(in))
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestRowCounter(t *testing.T) {
	tests := []struct {
		data string
		rows int64
	}{
		{"", 0},
		{"\\.\n\n\n", 0},
		{"\\.\n", 0},
		{"a\n\\.\n\n\n", 1},
		{"\n\\.\n\n\n", 1},       // one empty string
		{"\n\n\n", 3},            // three empty strings, no marker (a newer pg_dump)
		{"a\nb\n", 2},            // no marker
		{"a\nb", 2},              // no final newline
		{"\\\\.\n\\.\n\n\n", 1},  // a backslash and a dot, escaped
		{"x\\.\n", 1},            // not a marker line
		{"1\t\\.\n\\.\n\n\n", 1}, // nor is this
		{strings.Repeat("row\n", 1000) + "\\.\n\n\n", 1000},
		{strings.Repeat("\n", 40), 40},
	}
	for _, tt := range tests {
		for _, piece := range []int{1, 3, 1 << 20} {
			var r rowCounter
			for rest := tt.data; len(rest) > 0; {
				k := min(piece, len(rest))
				r.write([]byte(rest[:k]))
				rest = rest[k:]
			}
			if got := r.count(); got != tt.rows {
				t.Errorf("%q in pieces of %d: %d rows, want %d", tt.data[:min(len(tt.data), 20)], piece, got, tt.rows)
			}
		}
	}
}

// Frames made by the lz4 and zstd command-line tools, with the settings pg_dump's libraries use:
// linked 64 KiB lz4 blocks without checksums, zstd without a checksum.
func TestCheckFramesFromCLibraries(t *testing.T) {
	for _, tool := range []struct {
		alg, bin string
		args     []string
	}{
		{"lz4", "lz4", []string{"-q", "-c", "-B4", "-BD", "--no-frame-crc"}},
		{"zstd", "zstd", []string{"-q", "-c", "--no-check"}},
	} {
		path, err := exec.LookPath(tool.bin)
		if err != nil {
			t.Logf("%s not installed: skipping its frames", tool.bin)
			continue
		}
		a := shop(16, "none", false)
		a.alg = tool.alg
		data := []byte(strings.Repeat("0123456789 abcdefghij\tsome row text\n", 20000) + "\\.\n\n\n")
		cmd := exec.Command(path, tool.args...)
		cmd.Stdin = bytes.NewReader(data)
		frame, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool.bin, err)
		}
		var e enc
		a.header(&e)
		ent := Entry{DumpID: 1, HadDumper: true, TableOID: "0", OID: "1", Tag: "big", Desc: "TABLE DATA", Section: SectionData,
			CopyStmt: "COPY public.big (a) FROM stdin;\n", Namespace: "public"}
		a.entries = []synEntry{{Entry: ent}}
		a.toc(&e, nil)
		e.WriteByte(blkData)
		e.int(1)
		for c := frame; len(c) > 0; {
			k := min(len(c), 4096)
			e.int(int64(k))
			e.Write(c[:k])
			c = c[k:]
		}
		e.int(0)
		sum, err := Check(bytes.NewReader(e.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v", tool.alg, err)
		}
		if sum.Tables[0].Rows != 20000 || sum.Tables[0].Bytes != int64(len(data)) {
			t.Errorf("%s: %+v", tool.alg, sum.Tables)
		}
	}
}

// Archives pg_dump 15 wrote, kept small enough to live in testdata.
func TestCheckRealArchives(t *testing.T) {
	tests := []struct {
		file   string
		offset bool
		comp   string
	}{
		{"testdata/pg15-gzip-file.dump", true, "gzip"},
		{"testdata/pg15-none-pipe.dump", false, "none"},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Check(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		got := map[string]int64{}
		for _, tb := range sum.Tables {
			got[tb.Schema+"."+tb.Name] = tb.Rows
		}
		want := map[string]int64{"public.t": 4, "public.e": 0, "s2.many": 1000}
		if !reflect.DeepEqual(got, want) || sum.LargeObjects != 2 || sum.Header.Compression != tt.comp {
			t.Errorf("%s: %+v", tt.file, sum)
		}
		_, entries, err := ReadTOC(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.HadDumper && (e.DataState == DataPosSet) != tt.offset {
				t.Errorf("%s: entry %d has data state %d", tt.file, e.DumpID, e.DataState)
			}
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, fm := range formats() {
		a := shop(fm.vmin, fm.alg, fm.vmin%2 == 1)
		a.entries = a.entries[:5] // keep the seeds small
		f.Add(a.bytes(f))
	}
	for _, name := range []string{"testdata/pg15-gzip-file.dump", "testdata/pg15-none-pipe.dump"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, err := Check(bytes.NewReader(b))
		// The Checker, fed in uneven pieces, must agree.
		c := NewChecker(Options{})
		rng := rand.New(rand.NewSource(int64(len(b))))
		for rest := b; len(rest) > 0; {
			k := min(len(rest), 1+rng.Intn(64))
			if _, werr := c.Write(rest[:k]); werr != nil {
				break
			}
			rest = rest[k:]
		}
		sum2, err2 := c.Close()
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(sum, sum2) {
			t.Fatalf("Check: %+v, %v\nChecker: %+v, %v", sum, err, sum2, err2)
		}
		if err == nil && sum.Bytes != int64(len(b)) {
			t.Fatalf("accepted %d of %d bytes", sum.Bytes, len(b))
		}
		_, _, _ = ReadTOC(bytes.NewReader(b))
	})
}

func BenchmarkCheck(b *testing.B) {
	var many []string
	for i := 0; i < 400000; i++ {
		many = append(many, fmt.Sprintf("%d\t2024-01-%02d 10:%02d:00+00\tcustomer %d\t%d.%02d\t{\"sku\": \"A-%d\", \"qty\": %d}",
			i, 1+i%28, i%60, i%5000, i%997, i%100, i%321, i%9))
	}
	data := copyText(many...)
	b.Run("gzip-16-tables", func(b *testing.B) {
		a := &archive{vmin: 14, alg: "gzip", level: -1}
		per := len(many) / 16
		for i := 0; i < 16; i++ {
			a.entries = append(a.entries, synEntry{Entry: Entry{DumpID: i + 1, HadDumper: true, TableOID: "0", OID: "1",
				Tag: fmt.Sprint("t", i), Desc: "TABLE DATA", Section: SectionData, CopyStmt: "COPY t FROM stdin;\n",
				Namespace: "public"}, data: copyText(many[i*per : (i+1)*per]...)})
		}
		arch := a.bytes(b)
		b.SetBytes(int64(len(arch)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := Check(bytes.NewReader(arch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, alg := range []string{"gzip", "none", "lz4", "zstd"} {
		a := &archive{vmin: 16, alg: alg, level: -1}
		if alg == "gzip" {
			a.vmin = 14
		}
		a.entries = []synEntry{{Entry: Entry{DumpID: 1, HadDumper: true, TableOID: "0", OID: "1", Tag: "orders",
			Desc: "TABLE DATA", Section: SectionData, CopyStmt: "COPY public.orders FROM stdin;\n", Namespace: "public"}, data: data}}
		arch := a.bytes(b)
		b.Run(alg, func(b *testing.B) {
			b.SetBytes(int64(len(arch)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sum, err := Check(bytes.NewReader(arch))
				if err != nil || sum.Tables[0].Rows != int64(len(many)) {
					b.Fatal(sum, err)
				}
			}
			b.ReportMetric(float64(len(data))*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s-uncompressed")
		})
		if alg == "gzip" {
			// What a cut table costs: its framing read, its data not decompressed.
			b.Run("gzip-framing-only", func(b *testing.B) {
				b.SetBytes(int64(len(arch)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					sum, err := CheckWith(bytes.NewReader(arch), slowWorkers(b, 1))
					if err != nil || !sum.Tables[0].FramingOnly {
						b.Fatal(sum, err)
					}
				}
			})
		}
	}
}

// With many tables decoded at once, the error reported is still the first in file order, and the
// check stops early rather than reading the rest.
func TestCheckReportsFirstDamage(t *testing.T) {
	a := &archive{vmin: 14, alg: "gzip", level: -1, offsets: true}
	for i := 0; i < 40; i++ {
		var rows []string
		for r := 0; r < 3000; r++ {
			rows = append(rows, fmt.Sprintf("%d\t%d\t%x", i, r, r*r*7919))
		}
		a.entries = append(a.entries, synEntry{Entry: Entry{DumpID: i + 1, HadDumper: true, TableOID: "0", OID: "1",
			Tag: fmt.Sprint("t", i), Desc: "TABLE DATA", Section: SectionData, CopyStmt: "COPY t FROM stdin;\n",
			Namespace: "public"}, data: copyText(rows...)})
	}
	b := a.bytes(t)
	sum, err := Check(bytes.NewReader(b))
	if err != nil || len(sum.Tables) != 40 || sum.Tables[39].Rows != 3000 {
		t.Fatalf("%+v, %v", sum, err)
	}
	for run := 0; run < 20; run++ {
		c := bytes.Clone(b)
		c[a.blockAt[7]+200] ^= 0x40  // damage in t6
		c[a.blockAt[30]+300] ^= 0x40 // and in t29
		c = c[:a.blockAt[35]+100]    // and a cut in t34
		_, err := Check(bytes.NewReader(c))
		want := fmt.Sprintf("pgdump: data block for table public.t6 (dump id 7) at byte %d: gzip: ", a.blockAt[7])
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("err = %v, want it to start with %q", err, want)
		}
		c = bytes.Clone(b)
		c[a.blockAt[20]+1] = 9 // the block header of t19: no such dump id's block, found by the reader
		c[a.blockAt[25]+300] ^= 0x40
		_, err = Check(bytes.NewReader(c))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("data block at byte %d", a.blockAt[20])) {
			t.Fatalf("err = %v", err)
		}
	}
}
