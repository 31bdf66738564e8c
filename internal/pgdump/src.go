package pgdump

import (
	"errors"
	"fmt"
	"io"
)

// src is a buffered reader over the archive that knows its byte offset and decodes pg_dump's
// primitive types. Check reads through one src front to back, once; ReadHeader uses an exact src
// that never reads past what it decodes, so the caller's reader is left at the TOC.
type src struct {
	r       io.Reader
	buf     []byte
	i, n    int   // unread bytes are buf[i:n]
	off     int64 // archive offset of buf[i]
	exact   bool
	err     error // first error from r, io.EOF included; sticky
	intSize int
	offSize int
}

const srcBufSize = 256 << 10

func newSrc(r io.Reader, exact bool) *src {
	size := srcBufSize
	if exact {
		size = 32 // fits any int or offset; strings pass through in pieces
	}
	return &src{r: r, buf: make([]byte, size), exact: exact, intSize: 4, offSize: 8}
}

func (s *src) buffered() int { return s.n - s.i }

// fill makes at least k bytes (k <= len(s.buf)) available unless the input ends first.
func (s *src) fill(k int) bool {
	if s.n-s.i >= k {
		return true
	}
	if len(s.buf)-s.i < k {
		copy(s.buf, s.buf[s.i:s.n])
		s.n -= s.i
		s.i = 0
	}
	for empty := 0; s.n-s.i < k && s.err == nil; {
		end := len(s.buf)
		if s.exact {
			end = s.i + k
		}
		m, err := s.r.Read(s.buf[s.n:end])
		if m < 0 || m > end-s.n {
			err = errors.New("reader returned an impossible count")
			m = 0
		}
		s.n += m
		if err != nil {
			s.err = err
		} else if m == 0 {
			if empty++; empty >= 100 {
				s.err = io.ErrNoProgress
			}
		}
	}
	return s.n-s.i >= k
}

// more reports whether any byte remains, reading if needed.
func (s *src) more() bool { return s.fill(1) }

func (s *src) advance(k int) {
	s.i += k
	s.off += int64(k)
}

// fail turns the reader's state into an error for a read that came up short.
func (s *src) fail(what string) error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return &truncatedError{what: what, at: s.off + int64(s.buffered())}
	}
	return fmt.Errorf("reading %s at byte %d: %w", what, s.off, s.err)
}

// truncatedError reports an archive that ends before a complete structure.
type truncatedError struct {
	what string
	at   int64
}

func (e *truncatedError) Error() string {
	return fmt.Sprintf("archive truncated: it ends at byte %d, inside %s", e.at, e.what)
}

// ErrTruncated matches (errors.Is) every error about an archive that ends too early.
var ErrTruncated = errors.New("archive truncated")

func (e *truncatedError) Is(target error) bool { return target == ErrTruncated }

func (s *src) byte(what string) (byte, error) {
	if !s.fill(1) {
		return 0, s.fail(what)
	}
	b := s.buf[s.i]
	s.advance(1)
	return b, nil
}

// int reads pg_dump's ReadInt: a sign byte, then intSize bytes of magnitude, least significant
// first.
func (s *src) int(what string) (int64, error) {
	k := 1 + s.intSize
	if !s.fill(k) {
		return 0, s.fail(what)
	}
	b := s.buf[s.i : s.i+k]
	var v uint64
	for j := s.intSize; j >= 1; j-- {
		v = v<<8 | uint64(b[j])
	}
	at := s.off
	s.advance(k)
	if v > 1<<62 {
		return 0, fmt.Errorf("%s at byte %d: integer %d out of range", what, at, v)
	}
	// WriteInt writes a sign byte of 1 for negative numbers and 0 otherwise; ReadInt would take any
	// other value as negative, but only damage makes one.
	switch {
	case b[0] == 0:
		return int64(v), nil
	case b[0] == 1 && v != 0:
		return -int64(v), nil
	default:
		return 0, fmt.Errorf("%s at byte %d: sign byte %d of the integer %d is not one pg_dump writes", what, at, b[0], v)
	}
}

// offset reads pg_dump's ReadOffset (format 1.7 and later): a flag byte, then offSize bytes.
func (s *src) offset(what string) (flag int, off int64, err error) {
	at := s.off
	f, err := s.byte(what)
	if err != nil {
		return 0, 0, err
	}
	if f < DataPosNotSet || f > DataNone {
		return 0, 0, fmt.Errorf("%s at byte %d: data offset flag %d is not 1, 2 or 3", what, at, f)
	}
	if !s.fill(s.offSize) {
		return 0, 0, s.fail(what)
	}
	b := s.buf[s.i : s.i+s.offSize]
	var v uint64
	for j := len(b) - 1; j >= 0; j-- {
		v = v<<8 | uint64(b[j])
	}
	s.advance(s.offSize)
	if v > 1<<62 {
		return 0, 0, fmt.Errorf("%s at byte %d: data offset %d out of range", what, at, v)
	}
	return int(f), int64(v), nil
}

// strLen reads a string's length: -1 is NULL, anything else negative is damage.
func (s *src) strLen(what string) (n int64, null bool, err error) {
	at := s.off
	n, err = s.int(what)
	if err != nil {
		return 0, false, err
	}
	if n == -1 {
		return 0, true, nil
	}
	if n < 0 {
		return 0, false, fmt.Errorf("%s at byte %d: string length %d is invalid", what, at, n)
	}
	return n, false, nil
}

// str reads a string of at most max bytes. The buffer grows only as bytes arrive, so a damaged
// length cannot make it allocate more than the archive holds.
func (s *src) str(what string, max int64) (string, bool, error) {
	at := s.off
	n, null, err := s.strLen(what)
	if err != nil || null {
		return "", null, err
	}
	if n > max {
		return "", false, fmt.Errorf("%s at byte %d: string of %d bytes is longer than the %d this reader accepts", what, at, n, max)
	}
	if n <= int64(s.buffered()) {
		v := string(s.buf[s.i : s.i+int(n)])
		s.advance(int(n))
		return v, false, nil
	}
	b := make([]byte, 0, min(n, 64<<10))
	for int64(len(b)) < n {
		// In exact mode fill reads no more than asked for, so nothing beyond the string is consumed.
		if !s.fill(int(min(n-int64(len(b)), int64(len(s.buf))))) && s.buffered() == 0 {
			return "", false, s.fail(what)
		}
		take := int(min(int64(s.buffered()), n-int64(len(b))))
		b = append(b, s.buf[s.i:s.i+take]...)
		s.advance(take)
	}
	return string(b), false, nil
}

// skipStr reads past a string without keeping it; it returns whether it was NULL and its length.
func (s *src) skipStr(what string) (n int64, null bool, err error) {
	n, null, err = s.strLen(what)
	if err != nil || null {
		return n, null, err
	}
	return n, false, s.skip(what, n)
}

func (s *src) skip(what string, n int64) error {
	for n > 0 {
		if !s.fill(1) {
			return s.fail(what)
		}
		take := int(min(int64(s.buffered()), n))
		s.advance(take)
		n -= int64(take)
	}
	return nil
}

// short reads a string of at most max bytes (max <= len(s.buf)) and returns it as a view into
// the buffer, valid until the next read.
func (s *src) short(what string, max int) ([]byte, bool, error) {
	at := s.off
	n, null, err := s.strLen(what)
	if err != nil || null {
		return nil, null, err
	}
	if n > int64(max) {
		return nil, false, fmt.Errorf("%s at byte %d: string of %d bytes where at most %d are expected", what, at, n, max)
	}
	if !s.fill(int(n)) {
		return nil, false, s.fail(what)
	}
	v := s.buf[s.i : s.i+int(n)]
	s.advance(int(n))
	return v, false, nil
}
