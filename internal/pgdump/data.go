package pgdump

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// blockStream reads the payload of one data stream: chunks of an int length and that many bytes,
// ended by a zero length (_CustomWriteFunc, _EndData and _EndLO in pg_backup_custom.c). It hands
// out the chunks' bytes as one stream and returns io.EOF after the terminator.
type blockStream struct {
	s    *src
	left int64 // bytes left in the current chunk
	done bool  // the zero-length terminator has been read
	err  error // damage in the chunk structure; reported in preference to a decoder's complaint
	n    int64 // payload bytes handed out
}

func (b *blockStream) reset(s *src) { *b = blockStream{s: s} }

// ready makes b.left > 0, or returns io.EOF after the terminator, or the structural error.
func (b *blockStream) ready() error {
	for b.left == 0 {
		if b.err != nil {
			return b.err
		}
		if b.done {
			return io.EOF
		}
		at := b.s.off
		n, err := b.s.int("a data chunk length")
		switch {
		case err != nil:
			b.err = err
		case n == 0:
			b.done = true
		case n < 0:
			b.err = fmt.Errorf("chunk length %d at byte %d is invalid", n, at)
		default:
			b.left = n
		}
	}
	if b.s.buffered() == 0 && !b.s.fill(1) {
		b.err = b.s.fail("a data chunk")
		return b.err
	}
	return nil
}

// view returns the next bytes of the payload without copying them; consume must follow.
func (b *blockStream) view() ([]byte, error) {
	if err := b.ready(); err != nil {
		return nil, err
	}
	k := int(min(int64(b.s.buffered()), b.left))
	return b.s.buf[b.s.i : b.s.i+k], nil
}

func (b *blockStream) consume(k int) {
	b.s.advance(k)
	b.left -= int64(k)
	b.n += int64(k)
}

// each hands the rest of the payload to f (if not nil) as it is read, checking the chunks' lengths
// and the terminator without decoding anything.
func (b *blockStream) each(f func([]byte)) error {
	for {
		v, err := b.view()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if f != nil {
			f(v)
		}
		b.consume(len(v))
	}
}

func (b *blockStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	v, err := b.view()
	if err != nil {
		return 0, err
	}
	k := copy(p, v)
	b.consume(k)
	return k, nil
}

// decoders holds the decompression state of one goroutine, reused from stream to stream and,
// through decodersPool, from check to check.
type decoders struct {
	br    *bufio.Reader // between the compressed bytes and a decoder
	flate io.ReadCloser // created on first use, like the others
	adler hash.Hash32
	lz4   *lz4.Reader
	zstd  *zstd.Decoder
}

var decodersPool = sync.Pool{New: func() any {
	return &decoders{br: bufio.NewReaderSize(nil, 64<<10), adler: adler32.New()}
}}

// zstdMaxWindow admits pg_dump's "long" option (window log 27); the default levels use far less.
const zstdMaxWindow = 1 << 27

// decodeStream decompresses one data stream read from r and returns its uncompressed size and,
// if count, its COPY rows. A failure is described by explain.
func (d *decoders) decodeStream(alg string, r io.Reader, count bool) (n, rows int64, err error) {
	var rc rowCounter
	out := sink{count: count, rows: &rc}
	d.br.Reset(r)
	switch alg {
	case "gzip":
		err = d.zlib(&out)
	case "lz4":
		if d.lz4 == nil {
			d.lz4 = lz4.NewReader(nil)
		}
		d.lz4.Reset(d.br)
		_, err = d.lz4.WriteTo(&out)
	case "zstd":
		if d.zstd == nil {
			// Without concurrency the decoder runs no goroutines, so it never needs Close.
			d.zstd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(1<<40))
			if err != nil {
				return 0, 0, err
			}
		}
		if err = d.zstd.Reset(d.br); err == nil {
			_, err = d.zstd.WriteTo(&out)
		}
	default:
		err = fmt.Errorf("no decoder for %s", alg)
	}
	if err != nil {
		return out.n, 0, err
	}
	// pg_restore stops at the end of the compressed stream; anything after it inside the block
	// is damage.
	extra, err := d.br.WriteTo(io.Discard)
	if err != nil {
		return out.n, 0, err
	}
	if extra > 0 {
		return out.n, 0, fmt.Errorf("%d bytes follow the end of the compressed data", extra)
	}
	return out.n, rc.count(), nil
}

var errZlibChecksum = errors.New("invalid checksum")

// zlib reads pg_dump's gzip: zlib's deflate with the zlib wrapper (deflateInit), one stream per
// table and per large object. It unwraps the zlib format itself so the inflater can write
// straight from its window (WriteTo) instead of copying into a buffer.
func (d *decoders) zlib(w io.Writer) error {
	var h [4]byte
	if _, err := io.ReadFull(d.br, h[:2]); err != nil {
		return err
	}
	// RFC 1950: method 8 (deflate), window at most 32 KiB, header check, no preset dictionary.
	if h[0]&0x0f != 8 || h[0]>>4 > 7 || (uint16(h[0])<<8|uint16(h[1]))%31 != 0 {
		return errors.New("invalid header")
	}
	if h[1]&0x20 != 0 {
		return errors.New("the stream asks for a preset dictionary")
	}
	if d.flate == nil {
		d.flate = flate.NewReader(d.br)
	} else if err := d.flate.(flate.Resetter).Reset(d.br, nil); err != nil {
		return err
	}
	d.adler.Reset()
	if _, err := d.flate.(io.WriterTo).WriteTo(io.MultiWriter(d.adler, w)); err != nil {
		return err
	}
	// The inflater reads no further than the end of the deflate data, so the checksum is next.
	if _, err := io.ReadFull(d.br, h[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(h[:]) != d.adler.Sum32() {
		return errZlibChecksum
	}
	return nil
}

// release lets go of the last input, so the pool does not keep an archive's reader alive.
func (d *decoders) release() {
	d.br.Reset(nil)
	if d.lz4 != nil {
		d.lz4.Reset(nil)
	}
	if d.zstd != nil {
		_ = d.zstd.Reset(nil)
	}
	if d.flate != nil {
		_ = d.flate.(flate.Resetter).Reset(bytes.NewReader(nil), nil)
	}
	decodersPool.Put(d)
}

// explain words a decoder's failure; consumed is how far into the compressed data it got.
func explain(alg string, err error, consumed int64) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the compressed data ends early, after %d bytes", alg, consumed)
	}
	msg := err.Error()
	for _, p := range []string{"flate: ", "zstd: ", "lz4: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return fmt.Errorf("%s: %s (at byte %d of the compressed data)", alg, msg, consumed)
}

// sink receives a stream's uncompressed content.
type sink struct {
	n     int64
	count bool
	rows  *rowCounter
}

func (s *sink) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.count {
		s.rows.write(p)
	}
	return len(p), nil
}

// stream1 reads one data stream from the archive and decodes it on this goroutine; or, keeping up
// and behind (Options.behind), reads its framing only from where decoding stopped and says it
// skipped it. It adds the stream to the summary's compressed and inflated data bytes.
func (c *checker) stream1(count bool) (n, rows int64, skipped bool, err error) {
	c.stream.reset(c.s)
	inflated := int64(0)
	defer func() {
		c.sum.CompressedDataBytes += c.stream.n
		c.sum.InflatedDataBytes += inflated
	}()
	switch alg := c.sum.Header.Compression; {
	case alg == "none":
		var rc rowCounter
		err = c.stream.each(func(v []byte) {
			if count {
				rc.write(v)
			}
			n += int64(len(v))
		})
		inflated = n // nothing to decompress: all of it was read
		return n, rc.count(), false, err
	default:
		var r io.Reader = &c.stream
		if c.opts.behind != nil {
			// One stream can be long (a materialized view's data): the decoder stops between
			// reads once the check is behind, not only before it starts.
			r = &cutReader{r: r, behind: c.opts.behind}
		}
		n, rows, err = c.dec.decodeStream(alg, r, count)
		inflated = c.stream.n - int64(c.dec.br.Buffered()) // read ahead into the buffer is not decoded
		switch {
		case errors.Is(err, errCut) && c.stream.err == nil:
			return 0, 0, true, c.stream.each(nil)
		case err != nil && c.stream.err != nil:
			err = c.stream.err // damage in the chunks explains the decoder's complaint
		case err != nil:
			err = explain(alg, err, c.stream.n-int64(c.dec.br.Buffered()))
		}
		return n, rows, false, err
	}
}

// cutReader reads as errCut once behind says so.
type cutReader struct {
	r      io.Reader
	behind func() bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.behind() {
		return 0, errCut
	}
	return c.r.Read(p)
}

// rowCounter counts the lines of COPY text. pg_dump ends the data with the end-of-copy marker
// "\." on a line of its own and two empty lines (dumpTableData_copy); the marker and whatever
// follows it are not rows. A data line can never be "\." itself, since COPY escapes a backslash
// as "\\". An empty line before the marker is a row: an empty string in a one-column table.
type rowCounter struct {
	lines int64
	n     int64
	tail  [16]byte // the last min(n, 16) bytes, right-aligned
}

var newline = []byte{'\n'}

func (r *rowCounter) write(p []byte) {
	if len(p) == 0 {
		return
	}
	r.lines += int64(bytes.Count(p, newline))
	r.n += int64(len(p))
	if len(p) >= len(r.tail) {
		copy(r.tail[:], p[len(p)-len(r.tail):])
		return
	}
	copy(r.tail[:], r.tail[len(p):])
	copy(r.tail[len(r.tail)-len(p):], p)
}

func (r *rowCounter) count() int64 {
	t := r.tail[len(r.tail)-int(min(r.n, int64(len(r.tail)))):]
	if len(t) == 0 {
		return 0
	}
	k := 0 // trailing newlines
	for k < len(t) && t[len(t)-1-k] == '\n' {
		k++
	}
	if k == 0 {
		return r.lines + 1 // a last line without its newline
	}
	if k == len(t) {
		return r.lines
	}
	dot := len(t) - 1 - k
	if t[dot] == '.' && dot >= 1 && t[dot-1] == '\\' {
		if dot-2 >= 0 && t[dot-2] == '\n' || dot-2 < 0 && r.n == int64(len(t)) {
			return r.lines - int64(k)
		}
	}
	return r.lines
}
