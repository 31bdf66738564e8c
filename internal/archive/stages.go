package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// The stages an archive streams through before the tee, each a reader over the one before:
//
//	header check → structure check → plaintext hash (encrypted only) → encrypt → stored hash → tee
//
// A stage that finds something wrong fails its Read: the error reaches every destination still
// reading, and none of them makes the object visible. Bundle streams (StoreStream) take the
// announced check, encrypt, the stored count and the tee.

// checkHeader is the header stage: it looks at the archive header before anything is uploaded,
// so that an error page never lands as a dump. The returned reader still yields every byte.
func checkHeader(body io.Reader, size int64, where string) (io.Reader, pgdump.Header, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	peekLen := int64(4096)
	if size >= 0 {
		peekLen = min(size, peekLen)
	}
	peek, perr := br.Peek(int(peekLen))
	header, err := pgdump.ReadHeader(bytes.NewReader(peek))
	if err != nil {
		if perr != nil && perr != io.EOF && perr != bufio.ErrBufferFull {
			// The source failed before a header arrived: its own words say more than the format.
			return nil, header, fmt.Errorf("archive: read %s: %w", where, perr)
		}
		return nil, header, fmt.Errorf("archive: check download %s: %w", where, err)
	}
	return br, header, nil
}

// checkStructure is the structure stage: nil with CheckHeader, otherwise a reader that checks
// the archive as it streams, so that a damaged one fails the upload before the object becomes
// visible.
// streams is how many streams of the target are checked at once (a set's), each with its share
// of the check's memory, as targets archived at once have theirs.
func (j *Job) checkStructure(r io.Reader, size int64, streams int) *checkedReader {
	if j.Check == CheckHeader {
		return nil
	}
	// An unknown size counts as large: the check may then fall back to framing only.
	opts := pgdump.Options{KeepUp: j.Check != CheckFull, Size: max(size, 0), Allowance: j.checkAllowance, Share: max(1, j.Parallel) * streams}
	return &checkedReader{r: r, chk: pgdump.NewChecker(opts)}
}

// checkedReader feeds what it reads to the archive checker and, at the end of the stream,
// returns the checker's verdict instead of io.EOF when the archive is damaged.
type checkedReader struct {
	r       io.Reader
	chk     *pgdump.Checker
	summary *pgdump.Summary
	err     error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if _, werr := c.chk.Write(p[:n]); werr != nil {
			c.err = fmt.Errorf("the archive is damaged: %w", werr)
			return 0, c.err
		}
	}
	if err == io.EOF {
		sum, cerr := c.chk.Close()
		if cerr != nil {
			c.err = fmt.Errorf("the archive is damaged: %w", cerr)
			return n, c.err
		}
		c.summary = &sum
	}
	return n, err
}

// stop ends the check, which waits for more input until closed, when the upload stopped early.
func (c *checkedReader) stop() {
	if c != nil {
		_, _ = c.chk.Close()
	}
}

// meter is the hash stage: it counts what passes, hashes it when h is set, and records how the
// stream ended.
type meter struct {
	r   io.Reader
	h   hash.Hash // nil: count only
	n   atomic.Int64
	eof atomic.Bool // the stream ended well: the hash covers all of it
	err error       // why it ended otherwise; read only after the stores returned
}

// hashed is a meter that hashes with SHA-256, most of what the job itself spends CPU on.
func hashed(r io.Reader) *meter { return &meter{r: r, h: sha256.New()} }

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if m.h != nil {
		m.h.Write(p[:n])
	}
	m.n.Add(int64(n))
	switch {
	case err == io.EOF:
		m.eof.Store(true)
	case err != nil:
		m.err = err
	}
	return n, err
}

// sum is the hex SHA-256 of what passed.
func (m *meter) sum() string { return hex.EncodeToString(m.h.Sum(nil)) }

// encrypt is the encryption stage: the ciphertext of r and its size when e is set (after the
// checks, which read the plaintext: the stores get only ciphertext), r itself otherwise.
func encrypt(e Encrypter, r io.Reader, size int64) (io.Reader, int64, error) {
	if e == nil {
		return r, size, nil
	}
	return e.EncryptReader(r, size)
}

// dumpStream is a database archive behind its stages, ready for the tee.
type dumpStream struct {
	checked *checkedReader // nil with CheckHeader
	plain   *meter         // the plaintext's hash; nil unless encrypted
	stored  *meter         // what the destinations receive, hashed
	size    int64          // of what they receive, or store.UnknownSize
}

// stages puts an archive (after its header check) through the structure check, the hashes and
// encryption. One SHA-256 pass over what is stored; a second over the plaintext only when they
// differ (encrypted).
func (j *Job) stages(r io.Reader, size int64, streams int) (*dumpStream, error) {
	d := &dumpStream{checked: j.checkStructure(r, size, streams)}
	if d.checked != nil {
		r = d.checked
	}
	if j.Encrypt != nil {
		d.plain = hashed(r)
		r = d.plain
	}
	// A check that fails is a read error of the plaintext, and the ciphertext then never gets
	// its final chunk: no store makes it visible, and no cut-short copy could ever decrypt as whole.
	r, storedSize, err := encrypt(j.Encrypt, r, size)
	if err != nil {
		d.checked.stop()
		return nil, err
	}
	d.stored, d.size = hashed(r), storedSize
	return d, nil
}

// complete tells that the stream was read to its end, and to its announced size: the stored
// hash covers the whole archive.
func (d *dumpStream) complete() bool {
	n := d.stored.n.Load()
	return d.stored.eof.Load() && (d.size < 0 || n == d.size)
}
