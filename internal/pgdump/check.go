package pgdump

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Table is what the data of one TABLE DATA entry holds.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`  // COPY rows; -1 when the data is not COPY text (pg_dump --inserts) or was not decompressed
	Bytes  int64  `json:"bytes"` // uncompressed size of the table's data; -1 when it was not decompressed
	// FramingOnly is set when the check kept up with a fast stream (Options.KeepUp) by reading
	// this table's chunk framing without decompressing all of its data.
	FramingOnly bool `json:"framing_only,omitempty"`
}

// Summary is what Check found in a complete, readable archive.
type Summary struct {
	Header       Header         `json:"header"`
	Entries      int            `json:"toc_entries"`
	Tables       []Table        `json:"tables"` // in TOC order
	LargeObjects int            `json:"large_objects"`
	DataBlocks   int            `json:"data_blocks"`
	Bytes        int64          `json:"bytes"`      // length of the archive
	DataBytes    int64          `json:"data_bytes"` // uncompressed size of the table and large object data decompressed
	CountsByDesc map[string]int `json:"counts_by_desc"`
	// OtherFramingOnly counts the large objects and other data that is not a table's (such as
	// a materialized view's) checked for framing only, as Options.KeepUp allows.
	OtherFramingOnly int `json:"other_framing_only,omitempty"`
	// CompressedDataBytes is the size of the compressed data of every table and large object:
	// the bytes of every data chunk in every data block, without the chunks' framing.
	// InflatedDataBytes is how much of it was fed to a decompressor: all of it unless
	// Options.KeepUp cut something, and then, for each table or other data cut, what was
	// decompressed before the cut (nothing for data cut before it started). In an archive
	// without compression there is nothing to decompress and all the data is read: both are
	// the data's size, as DataBytes is.
	CompressedDataBytes int64 `json:"compressed_data_bytes"`
	InflatedDataBytes   int64 `json:"inflated_data_bytes"`
}

// InflatedPercent is the share of the compressed data that was decompressed, in percent: 100
// when nothing was cut or there is no data.
func (s Summary) InflatedPercent() float64 {
	if s.CompressedDataBytes <= 0 {
		return 100
	}
	return 100 * float64(s.InflatedDataBytes) / float64(s.CompressedDataBytes)
}

// FramingOnly lists, as schema.name, the tables whose data was not all decompressed.
func (s Summary) FramingOnly() []string {
	var names []string
	for _, t := range s.Tables {
		if t.FramingOnly {
			names = append(names, t.Schema+"."+t.Name)
		}
	}
	return names
}

// Options changes what a check does.
type Options struct {
	// KeepUp, in a Checker, lets decompression hold the writer back only for a while: the writer
	// waits for the check through bursts, but once its waits add up to more than the Allowance
	// for the time since the check started (the check would end that long after the transfer),
	// while it is waiting, the table being decompressed is read for its chunk framing only (every
	// chunk length, the block's end, and what follows) and marked FramingOnly, and so is any
	// large object or other data that is not a table's (counted in OtherFramingOnly) that the
	// writer is waiting for. Truncation, missing or misplaced blocks and trailing bytes are still
	// found; damage inside data read for framing only is not. An archive whose Size is known and
	// under FullCheckBelow is always decompressed whole. Outside a Checker, KeepUp changes nothing.
	KeepUp bool

	// Size is the archive's length when known (0 when not).
	Size int64

	// FramingOnly, when set, names the tables (by schema and name) whose data in a compressed
	// archive is read for its chunk framing only, not decompressed: such a table is FramingOnly,
	// its Rows and Bytes -1. It is for a reader that has that data checked another way — a
	// restore, whose pg_restore decompresses every byte, of an archive whose SHA-256 ties it to
	// the row counts the backup's own check made — and would otherwise decompress it twice. In
	// an archive without compression every table is read and counted whole: there is nothing to
	// decompress.
	FramingOnly func(schema, name string) bool

	// Allowance is how long in all the writer may wait for decompression once the check has run
	// for elapsed; nil means DefaultAllowance.
	Allowance func(elapsed time.Duration) time.Duration

	// behind says the check has held its input back for longer than it may and is holding it
	// back now; a Checker that keeps up sets it (see pace). Nil when the check never cuts.
	behind func() bool

	// Share divides the compressed data the check may hold in flight (16 MiB) by this many:
	// targets archived at once share that memory as they share the part buffers. 0 or 1 is all.
	Share int

	// For tests: the segment budget, and hooks before a worker decodes, when it takes a
	// segment of a job's compressed data, and after a cut.
	segs         int
	beforeDecode func()
	takeSeg      func()
	onCut        func()
}

// FullCheckBelow is the archive size under which KeepUp never cuts: the whole archive is
// decompressed, holding the transfer back for as long as that takes (about a second at the
// 60–80 MB/s one core inflates).
const FullCheckBelow = 64 << 20

// DefaultAllowance is how long, in all, KeepUp lets decompression hold the writer back once the check
// has run for elapsed: 2% of the time, plus 25 ms. Bursts need no more: a 2 MiB download range
// arriving at once fits in the 16 MiB the check holds in flight without a wait, so only a check
// that falls behind for real makes the writer wait. On a fast link the wait is not all the
// check costs: until the cut, decompressing takes a core the upload shares, so the allowance is
// kept well under the tenth of header's throughput that auto may cost (350 MB/s moves 1 GiB in
// three seconds).
func DefaultAllowance(elapsed time.Duration) time.Duration { return 25*time.Millisecond + elapsed/50 }

// Data block types of the custom format (pg_backup_archiver.h).
const (
	blkData  = 1
	blkBlobs = 3
)

// Check reads a whole custom-format archive from r, front to back and once: the header, every TOC
// entry, then every data block, decompressing each and counting the COPY rows of every table and
// the large objects. It needs no seeking and bounded memory. Any damage — a bad checksum, a
// truncated file, trailing bytes, a data block the TOC does not expect or one it misses — is an
// error that names what is wrong and at which byte.
func Check(r io.Reader) (Summary, error) { return CheckWith(r, Options{}) }

// CheckWith is Check with options.
func CheckWith(r io.Reader, o Options) (Summary, error) {
	if !o.KeepUp || o.Size > 0 && o.Size < FullCheckBelow {
		o.behind = nil // one rule: nothing is cut unless behind is set
	}
	bufp := srcBufPool.Get().(*[]byte)
	defer srcBufPool.Put(bufp)
	c := &checker{s: &src{r: r, buf: *bufp, intSize: 4, offSize: 8}, byID: map[int]int{}, errBlock: -1, opts: o}
	err := c.run()
	if c.pool != nil {
		err = c.finish(err)
	}
	if c.dec != nil {
		c.dec.release()
	}
	if err != nil {
		// What the data blocks held depends on how far the check got before it stopped.
		c.sum.Tables, c.sum.LargeObjects, c.sum.DataBlocks, c.sum.DataBytes, c.sum.Bytes, c.sum.OtherFramingOnly = nil, 0, 0, 0, 0, 0
		c.sum.CompressedDataBytes, c.sum.InflatedDataBytes = 0, 0
		return c.sum, err
	}
	c.sum.Bytes = c.s.off
	return c.sum, nil
}

var srcBufPool = sync.Pool{New: func() any { b := make([]byte, srcBufSize); return &b }}

// dataEntry is what the data phase needs of a TOC entry.
type dataEntry struct {
	id     int
	desc   string
	tag    string
	schema string
	copy   bool
	state  int
	offset int64
	seen   bool
	table  int // index in Summary.Tables, or -1
}

type checker struct {
	s        *src
	sum      Summary
	entries  []dataEntry
	byID     map[int]int
	expected int // entries whose data block must appear
	seen     int
	tocEnd   int64 // archive offset of the first data block

	stream   blockStream
	dec      *decoders // for large objects, decoded on this goroutine
	pool     *pool     // for table data, decoded by workers
	jobs     []*job
	errBlock int // ordinal of the data block run's error is about; -1 for none in particular
	opts     Options
}

func (c *checker) run() error {
	h, err := readHeader(c.s)
	c.sum.Header = h
	if err != nil {
		return err
	}
	c.sum.CountsByDesc = map[string]int{}
	err = readTOC(c.s, h, false, func(e *Entry) error {
		c.sum.Entries++
		c.sum.CountsByDesc[e.Desc]++
		if !e.HadDumper {
			return nil
		}
		d := dataEntry{id: e.DumpID, desc: e.Desc, tag: e.Tag, schema: e.Namespace, copy: e.CopyStmt != "",
			state: e.DataState, offset: e.Offset, table: -1}
		if d.desc == "TABLE DATA" {
			d.table = len(c.sum.Tables)
			rows := int64(0)
			if !d.copy {
				rows = -1
			}
			c.sum.Tables = append(c.sum.Tables, Table{Schema: e.Namespace, Name: e.Tag, Rows: rows})
		}
		c.byID[d.id] = len(c.entries)
		c.entries = append(c.entries, d)
		return nil
	})
	if err != nil {
		return err
	}
	c.tocEnd = c.s.off
	// Every entry with a data dumper has a block: pg_restore fails ("could not find block ID")
	// on one that is missing.
	c.expected = len(c.entries)
	for i := range c.entries {
		if e := &c.entries[i]; e.state == DataPosSet && e.offset < c.tocEnd {
			return fmt.Errorf("pgdump: TOC says the data of %s starts at byte %d, inside the header or TOC (which end at byte %d); the TOC is damaged", e.name(), e.offset, c.tocEnd)
		}
	}
	switch alg := h.Compression; alg {
	case "none":
	case "gzip", "lz4", "zstd":
		c.dec = decodersPool.Get().(*decoders)
		c.pool = newPool(alg, c.opts)
	default:
		return fmt.Errorf("pgdump: compression %q of an archive made by pg_dump %s is not supported", alg, h.DumpVersion)
	}
	for {
		if !c.s.more() {
			if c.s.err != nil && !errors.Is(c.s.err, io.EOF) {
				return fmt.Errorf("pgdump: reading archive at byte %d: %w", c.s.off, c.s.err)
			}
			break
		}
		if c.seen == c.expected {
			return fmt.Errorf("pgdump: %d or more bytes of unexpected data at byte %d, after the last data block the TOC lists (trailing garbage?)", c.s.buffered(), c.s.off)
		}
		if c.pool != nil && c.pool.failed.Load() {
			return errAborted
		}
		c.errBlock = c.sum.DataBlocks
		if err := c.block(); err != nil {
			return err
		}
		c.errBlock = -1
	}
	if c.seen < c.expected {
		for i := range c.entries {
			if e := &c.entries[i]; !e.seen {
				return fmt.Errorf("pgdump: %w: the archive ends at byte %d without the data of %s and %d more data block(s) the TOC lists",
					ErrTruncated, c.s.off, e.name(), c.expected-c.seen-1)
			}
		}
	}
	return nil
}

// finish waits for the workers and takes their results. The error reported is the first in file
// order, so it does not depend on which goroutine noticed what first.
func (c *checker) finish(err error) error {
	c.pool.stop()
	if errors.Is(err, errAborted) {
		err, c.errBlock = nil, -1 // a job has the real error
	}
	for _, j := range c.jobs {
		if err != nil && c.errBlock >= 0 && j.block >= c.errBlock {
			break
		}
		e := &c.entries[j.entry]
		if j.err != nil {
			return fmt.Errorf("pgdump: data block for %s at byte %d: %w", e.name(), j.start, j.err)
		}
		c.sum.InflatedDataBytes += j.inflated
		t := &c.sum.Tables[e.table]
		if j.cut.Load() {
			t.Rows, t.Bytes, t.FramingOnly = -1, -1, true
			continue
		}
		c.sum.DataBytes += j.n
		t.Bytes = j.n
		if j.count {
			t.Rows = j.rows
		}
	}
	if err == nil && len(c.jobs) > 0 && c.pool.failed.Load() {
		return errAborted // not reached: a failed job reports its error above
	}
	return err
}

func (e *dataEntry) name() string {
	switch {
	case e.desc == "TABLE DATA" && e.schema != "":
		return fmt.Sprintf("table %s.%s (dump id %d)", e.schema, e.tag, e.id)
	case e.desc == "TABLE DATA":
		return fmt.Sprintf("table %s (dump id %d)", e.tag, e.id)
	case e.desc == "BLOBS":
		return fmt.Sprintf("large objects %q (dump id %d)", e.tag, e.id)
	default:
		return fmt.Sprintf("%s %q (dump id %d)", e.desc, e.tag, e.id)
	}
}

// block reads one data block: a type byte and a dump id, then either one data stream (BLK_DATA)
// or a list of large objects, each an OID and a data stream, ended by OID 0 (BLK_BLOBS).
// See _PrintTocData, _PrintData and _LoadLOs in pg_backup_custom.c.
func (c *checker) block() error {
	start := c.s.off
	typ, err := c.s.byte("a data block header")
	if err != nil {
		return fmt.Errorf("pgdump: %w", err)
	}
	id, err := c.s.int("a data block header")
	if err != nil {
		return fmt.Errorf("pgdump: data block at byte %d: %w", start, err)
	}
	if typ != blkData && typ != blkBlobs {
		return fmt.Errorf("pgdump: unknown data block type %d (dump id %d) at byte %d; the archive is damaged", typ, id, start)
	}
	idx, ok := c.byID[int(id)]
	if !ok || id != int64(int(id)) {
		return fmt.Errorf("pgdump: data block at byte %d is for dump id %d, which has no data in the TOC; the archive is damaged", start, id)
	}
	e := &c.entries[idx]
	if e.seen {
		return fmt.Errorf("pgdump: second data block for %s at byte %d; the archive is damaged", e.name(), start)
	}
	if e.state == DataPosSet && e.offset != start {
		return fmt.Errorf("pgdump: data block for %s is at byte %d but the TOC says byte %d; the archive is damaged", e.name(), start, e.offset)
	}
	if want := blockType(e.desc); typ != want {
		return fmt.Errorf("pgdump: data block for %s at byte %d has type %d, not %d; the archive is damaged", e.name(), start, typ, want)
	}
	e.seen = true
	c.seen++
	c.sum.DataBlocks++

	if typ == blkData {
		if e.table >= 0 && c.dec != nil && c.opts.FramingOnly != nil && c.opts.FramingOnly(e.schema, e.tag) {
			return c.framing(e, start)
		}
		count := e.table >= 0 && e.copy
		if c.pool != nil && e.table >= 0 {
			j := &job{block: c.sum.DataBlocks - 1, entry: idx, start: start, count: count, in: make(chan []byte, jobQueue)}
			if err := c.dispatch(j); err != nil {
				return fmt.Errorf("pgdump: data block for %s at byte %d: %w", e.name(), start, err)
			}
			c.sum.CompressedDataBytes += c.stream.n
			return nil
		}
		n, rows, skipped, err := c.stream1(count)
		if err != nil {
			return fmt.Errorf("pgdump: data block for %s at byte %d: %w", e.name(), start, err)
		}
		if skipped {
			c.sum.OtherFramingOnly++
			return nil
		}
		c.sum.DataBytes += n
		if e.table >= 0 {
			t := &c.sum.Tables[e.table]
			t.Bytes = n
			if count {
				t.Rows = rows
			}
		}
		return nil
	}
	for {
		at := c.s.off
		oid, err := c.s.int("a large object OID")
		if err != nil {
			return fmt.Errorf("pgdump: data block for %s at byte %d: %w", e.name(), start, err)
		}
		if oid == 0 {
			return nil
		}
		// OIDs above 2^31 are written as negative ints (WriteInt of an Oid).
		if oid < -1<<31 || oid >= 1<<32 {
			return fmt.Errorf("pgdump: data block for %s at byte %d: large object OID %d at byte %d is out of range", e.name(), start, oid, at)
		}
		n, _, skipped, err := c.stream1(false)
		if err != nil {
			return fmt.Errorf("pgdump: data block for %s at byte %d: large object %d (at byte %d): %w", e.name(), start, uint32(oid), at, err)
		}
		c.sum.LargeObjects++
		if skipped {
			c.sum.OtherFramingOnly++
			continue
		}
		c.sum.DataBytes += n
	}
}

// framing reads the data stream of e, a table's, for its chunk framing only (Options.FramingOnly).
func (c *checker) framing(e *dataEntry, start int64) error {
	c.stream.reset(c.s)
	if err := c.stream.each(nil); err != nil {
		return fmt.Errorf("pgdump: data block for %s at byte %d: %w", e.name(), start, err)
	}
	c.sum.CompressedDataBytes += c.stream.n
	t := &c.sum.Tables[e.table]
	t.Rows, t.Bytes, t.FramingOnly = -1, -1, true
	return nil
}

// blockType is what WriteDataChunksForTocEntry writes for an entry: _StartLOs for BLOBS,
// _StartData for everything else.
func blockType(desc string) byte {
	if desc == "BLOBS" {
		return blkBlobs
	}
	return blkData
}
