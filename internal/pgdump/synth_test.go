package pgdump

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// archive builds custom-format archives the way pg_dump writes them (WriteHead, WriteToc,
// _WriteExtraToc, _StartData/_StartLOs/_StartLO, _CustomWriteFunc, _EndData/_EndLO/_EndLOs), for
// formats and compressions the pg_dump at hand cannot produce.
type archive struct {
	vmin    byte   // format 1.<vmin>.0
	alg     string // none, gzip, lz4, zstd
	level   int    // the zlib level in headers before 1.15 (-1 default)
	offsets bool   // pg_dump could seek its output and filled in the data offsets
	chunk   int    // largest chunk written (pg_dump uses 4 KiB buffers); 0 for 4096
	entries []synEntry

	// Filled in by bytes(): where each TOC entry and data block starts, where the TOC ends,
	// and which bytes are the contents of strings.
	entryAt  []int
	blockAt  map[int]int
	tocEnd   int
	contents [][2]int
	// packed is the size of each entry's compressed data (the bytes of its chunks), by dump id.
	packed map[int]int64
}

// packedData is the size of all the compressed data: what a check's CompressedDataBytes says.
func (a *archive) packedData() (n int64) {
	for _, k := range a.packed {
		n += k
	}
	return n
}

type synEntry struct {
	Entry
	data []byte  // the data stream of an entry with a dumper, other than BLOBS
	los  []synLO // the large objects of a BLOBS entry
}

type synLO struct {
	oid  uint32
	data []byte
}

type enc struct {
	bytes.Buffer
	contents *[][2]int
}

func (e *enc) int(v int64) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	e.WriteByte(sign)
	for i := 0; i < 4; i++ {
		e.WriteByte(byte(v >> (8 * i)))
	}
}

func (e *enc) str(s string) {
	e.int(int64(len(s)))
	if e.contents != nil && len(s) > 0 {
		*e.contents = append(*e.contents, [2]int{e.Len(), e.Len() + len(s)})
	}
	e.WriteString(s)
}

func (e *enc) null() { e.int(-1) }

func (e *enc) offset(flag int, off int64) {
	e.WriteByte(byte(flag))
	for i := 0; i < 8; i++ {
		e.WriteByte(byte(off >> (8 * i)))
	}
}

func (a *archive) header(e *enc) {
	e.WriteString("PGDMP")
	e.Write([]byte{1, a.vmin, 0, 4, 8, 1})
	if a.vmin >= 15 {
		e.WriteByte(map[string]byte{"none": 0, "gzip": 1, "lz4": 2, "zstd": 3}[a.alg])
	} else {
		level := a.level
		if a.alg == "none" {
			level = 0
		}
		e.int(int64(level))
	}
	for _, v := range []int64{5, 4, 3, 2, 1, 125, 0} { // 2025-02-02 03:04:05
		e.int(v)
	}
	e.str("shop")
	e.str("17.2")
	e.str(map[byte]string{12: "10.23", 13: "11.22", 14: "15.10", 15: "16.6", 16: "17.2"}[a.vmin])
}

func (a *archive) toc(e *enc, offsets map[int]int) {
	e.int(int64(len(a.entries)))
	a.entryAt = a.entryAt[:0]
	for _, se := range a.entries {
		t := se.Entry
		a.entryAt = append(a.entryAt, e.Len())
		e.int(int64(t.DumpID))
		if t.HadDumper {
			e.int(1)
		} else {
			e.int(0)
		}
		e.str(t.TableOID)
		e.str(t.OID)
		e.str(t.Tag)
		e.str(t.Desc)
		e.int(int64(t.Section))
		e.str(t.Defn)
		e.str(t.DropStmt)
		e.str(t.CopyStmt)
		e.str(t.Namespace)
		e.str(t.Tablespace)
		if a.vmin >= 14 {
			e.str(t.TableAM)
		}
		if a.vmin >= 16 {
			e.int(int64(t.RelKind))
		}
		e.str(t.Owner)
		e.str("false")
		for _, d := range t.Deps {
			e.str(fmt.Sprint(d))
		}
		e.null()
		switch {
		case !t.HadDumper:
			e.offset(DataNone, 0)
		case a.offsets:
			e.offset(DataPosSet, int64(offsets[t.DumpID]))
		default:
			e.offset(DataPosNotSet, 0)
		}
	}
}

// compress writes one data stream: the compressor's output in chunks, then a zero length. It
// returns the size of the compressor's output.
func (a *archive) compress(t testing.TB, e *enc, data []byte) int64 {
	var c []byte
	switch a.alg {
	case "none":
		c = data
	case "gzip":
		var b bytes.Buffer
		level := a.level
		if level == 0 {
			level = -1
		}
		zw, err := zlib.NewWriterLevel(&b, level)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
		c = b.Bytes()
	case "zstd":
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
		if err != nil {
			t.Fatal(err)
		}
		c = zw.EncodeAll(data, nil)
	case "lz4":
		var b bytes.Buffer
		zw := lz4.NewWriter(&b)
		if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
		c = b.Bytes()
	default:
		t.Fatalf("unknown compression %q", a.alg)
	}
	chunk := a.chunk
	if chunk == 0 {
		chunk = 4096
	}
	packed := int64(len(c))
	for len(c) > 0 {
		k := min(chunk, len(c))
		e.int(int64(k))
		e.Write(c[:k])
		c = c[k:]
	}
	e.int(0)
	return packed
}

func (a *archive) data(t testing.TB, e *enc, base int) map[int]int {
	at := map[int]int{}
	a.packed = map[int]int64{}
	for _, se := range a.entries {
		if !se.HadDumper {
			continue
		}
		at[se.DumpID] = base + e.Len()
		if se.Desc == "BLOBS" {
			e.WriteByte(blkBlobs)
			e.int(int64(se.DumpID))
			for _, lo := range se.los {
				e.int(int64(int32(lo.oid))) // WriteInt(AH, oid): OIDs above 2^31 come out negative
				a.packed[se.DumpID] += a.compress(t, e, lo.data)
			}
			e.int(0)
			continue
		}
		e.WriteByte(blkData)
		e.int(int64(se.DumpID))
		a.packed[se.DumpID] = a.compress(t, e, se.data)
	}
	return at
}

func (a *archive) bytes(t testing.TB) []byte {
	var head, toc, data enc
	a.contents = nil
	toc.contents = &a.contents
	a.header(&head)
	a.toc(&toc, nil) // sizes do not depend on the offsets
	blocks := a.data(t, &data, head.Len()+toc.Len())
	toc.Reset()
	a.contents = nil
	a.toc(&toc, blocks)
	for i := range a.entryAt {
		a.entryAt[i] += head.Len()
	}
	for i := range a.contents {
		a.contents[i][0] += head.Len()
		a.contents[i][1] += head.Len()
	}
	a.blockAt = blocks
	a.tocEnd = head.Len() + toc.Len()
	return append(append(head.Bytes(), toc.Bytes()...), data.Bytes()...)
}

// copyText renders rows as pg_dump's COPY data, with its end-of-copy marker.
func copyText(rows ...string) []byte {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	b.WriteString("\\.\n\n\n")
	return []byte(b.String())
}

// shop is a small database's archive: schemas, tables with and without rows, data dumped as
// INSERTs, large objects, and (from 1.16) BLOB METADATA and several BLOBS entries.
func shop(vmin byte, alg string, offsets bool) *archive {
	id := 0
	next := func() int { id++; return id }
	entry := func(desc, ns, tag string, section int, had bool, deps ...int) Entry {
		return Entry{DumpID: next(), HadDumper: had, TableOID: "1259", OID: fmt.Sprint(16384 + id), Tag: tag, Desc: desc,
			Section: section, Namespace: ns, Owner: "u1", Deps: deps}
	}
	a := &archive{vmin: vmin, alg: alg, level: -1, offsets: offsets}
	add := func(e Entry, data []byte, los ...synLO) int {
		a.entries = append(a.entries, synEntry{Entry: e, data: data, los: los})
		return e.DumpID
	}
	enc := entry("ENCODING", "", "ENCODING", SectionPreData, false)
	enc.Defn = "SET client_encoding = 'UTF8';\n"
	add(enc, nil)
	sch := entry("SCHEMA", "", "billing", SectionPreData, false)
	sch.Defn = "CREATE SCHEMA billing;\n"
	sch.DropStmt = "DROP SCHEMA billing;\n"
	schID := add(sch, nil)

	table := func(ns, name, cols string) int {
		e := entry("TABLE", ns, name, SectionPreData, false, schID)
		e.Defn = "CREATE TABLE " + ns + "." + name + " (" + cols + ");\n"
		e.DropStmt = "DROP TABLE " + ns + "." + name + ";\n"
		e.TableAM = "heap"
		e.RelKind = 'r'
		return add(e, nil)
	}
	tdata := func(ns, name string, tid int, copyStmt string, data []byte) {
		e := entry("TABLE DATA", ns, name, SectionData, true, tid)
		e.TableOID = "0"
		e.CopyStmt = copyStmt
		add(e, data)
	}
	orders := table("public", "orders", "id int, note text")
	tdata("public", "orders", orders, "COPY public.orders (id, note) FROM stdin;\n",
		copyText("1\thello", "2\t\\N", "3\ttab\\there", "4\tline\\nbreak and back\\\\slash", "5\t\\\\."))
	empty := table("public", "empty", "id int")
	tdata("public", "empty", empty, "COPY public.empty (id) FROM stdin;\n", copyText())
	blank := table("billing", "blank", "s text")
	tdata("billing", "blank", blank, "COPY billing.blank (s) FROM stdin;\n", copyText("", "x", ""))
	var many []string
	for i := 0; i < 5000; i++ {
		many = append(many, fmt.Sprintf("%d\tinvoice %d\t%d.%02d", i, i*7, i%1000, i%100))
	}
	inv := table("billing", "invoices", "id int, label text, amount numeric")
	tdata("billing", "invoices", inv, "COPY billing.invoices (id, label, amount) FROM stdin;\n", copyText(many...))
	ins := table("public", "inserted", "id int")
	tdata("public", "inserted", ins, "", []byte("INSERT INTO public.inserted VALUES (1);\nINSERT INTO public.inserted VALUES (2);\n"))

	seq := entry("SEQUENCE SET", "public", "orders_id_seq", SectionData, false)
	seq.Defn = "SELECT pg_catalog.setval('public.orders_id_seq', 5, true);\n"
	add(seq, nil)

	los := []synLO{{16385, []byte("hello")}, {3000000000, bytes.Repeat([]byte{0, 1, 2, 0xff}, 3000)}, {16400, nil}}
	if vmin >= 16 {
		md := entry("BLOB METADATA", "", "16385..16400", SectionPreData, false)
		md.Defn = "16385\n3000000000\n16400\n"
		mdID := add(md, nil)
		add(entry("BLOBS", "", "LARGE OBJECTS 16385..3000000000", SectionData, true, mdID), nil, los[:2]...)
		add(entry("BLOBS", "", "LARGE OBJECTS 16400..16400", SectionData, true, mdID), nil, los[2:]...)
	} else {
		for _, lo := range los {
			b := entry("BLOB", "", fmt.Sprint(lo.oid), SectionPreData, false)
			b.Defn = fmt.Sprintf("SELECT pg_catalog.lo_create('%d');\n", lo.oid)
			add(b, nil)
		}
		add(entry("BLOBS", "", "BLOBS", SectionData, true), nil, los...)
	}
	idx := entry("INDEX", "billing", "invoices_pkey", SectionPostData, false, inv)
	idx.Defn = "CREATE INDEX invoices_pkey ON billing.invoices (id);\n"
	add(idx, nil)
	return a
}

// shopTables is what Check should find in shop's data.
var shopTables = []Table{
	{"public", "orders", 5, 0, false},
	{"public", "empty", 0, 0, false},
	{"billing", "blank", 3, 0, false},
	{"billing", "invoices", 5000, 0, false},
	{"public", "inserted", -1, 0, false},
}
