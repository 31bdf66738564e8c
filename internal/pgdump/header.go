// Package pgdump reads pg_dump custom-format archives (the format of Heroku backups) without Postgres.
package pgdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Magic opens every pg_dump custom-format archive.
const Magic = "PGDMP"

// Archive format versions we know the header of. 1.12 is pg_dump 9.5 … 1.14 is pg_dump 12–15,
// 1.15 is pg_dump 16 (compression algorithm byte), 1.16 is pg_dump 17.
const (
	minVersion = 0x010C00 // 1.12.0
	maxVersion = 0x011000 // 1.16.0
	vers1_15   = 0x010F00
)

// Header is what an archive says about itself before its table of contents.
type Header struct {
	FormatVersion    string    `json:"format_version"` // e.g. "1.14.0"
	Compression      string    `json:"compression"`    // none, gzip, lz4 or zstd
	CompressionLevel int       `json:"compression_level,omitempty"`
	Database         string    `json:"database"`
	ServerVersion    string    `json:"server_version"`
	DumpVersion      string    `json:"pg_dump_version"`
	Created          time.Time `json:"created"` // wall clock of the dumping host, zone unknown: recorded as UTC
	IntSize          int       `json:"-"`
	OffSize          int       `json:"-"`
	version          int
}

// ErrNotArchive reports bytes that are not a pg_dump custom-format archive.
var ErrNotArchive = errors.New("not a pg_dump custom-format archive")

// ReadHeader reads the archive header from r and leaves r positioned at the table of contents.
func ReadHeader(r io.Reader) (Header, error) {
	br := &reader{r: r}
	var h Header
	magic := br.bytes(len(Magic))
	if br.err != nil {
		return h, fmt.Errorf("%w: %w", ErrNotArchive, br.err)
	}
	if string(magic) != Magic {
		return h, fmt.Errorf("%w: it starts like %s", ErrNotArchive, Sniff(magic))
	}
	vmaj, vmin, vrev := int(br.byte()), int(br.byte()), int(br.byte())
	h.version = vmaj<<16 | vmin<<8 | vrev
	h.FormatVersion = fmt.Sprintf("%d.%d.%d", vmaj, vmin, vrev)
	if br.err == nil && h.version < minVersion {
		return h, fmt.Errorf("pgdump: archive format %s is older than pg_dump 9.5 writes; not supported", h.FormatVersion)
	}
	if br.err == nil && h.version > maxVersion {
		return h, fmt.Errorf("pgdump: archive format %s is newer than this pgoffsite knows (up to 1.16, pg_dump 17); upgrade pgoffsite", h.FormatVersion)
	}
	h.IntSize = int(br.byte())
	h.OffSize = int(br.byte())
	if br.err == nil && (h.IntSize < 1 || h.IntSize > 8 || h.OffSize < 1 || h.OffSize > 8) {
		return h, fmt.Errorf("pgdump: implausible integer sizes %d/%d in header", h.IntSize, h.OffSize)
	}
	br.intSize = h.IntSize
	if f := br.byte(); br.err == nil && f != 1 {
		return h, fmt.Errorf("%w: format code %d is not the custom format (-Fc)", ErrNotArchive, f)
	}
	if h.version >= vers1_15 {
		switch alg := br.byte(); alg {
		case 0:
			h.Compression = "none"
		case 1:
			h.Compression = "gzip"
		case 2:
			h.Compression = "lz4"
		case 3:
			h.Compression = "zstd"
		default:
			if br.err == nil {
				return h, fmt.Errorf("pgdump: unknown compression algorithm %d", alg)
			}
		}
	} else {
		// Before 1.15 the header holds a zlib level: 0 none, -1 default, 1-9.
		h.CompressionLevel = br.int()
		h.Compression = "gzip"
		if h.CompressionLevel == 0 {
			h.Compression = "none"
		}
	}
	sec, min, hour := br.int(), br.int(), br.int()
	mday, mon, year := br.int(), br.int(), br.int()
	_ = br.int() // isdst
	h.Created = time.Date(year+1900, time.Month(mon+1), mday, hour, min, sec, 0, time.UTC)
	h.Database = br.str()
	h.ServerVersion = br.str()
	h.DumpVersion = br.str()
	if br.err != nil {
		return h, fmt.Errorf("pgdump: header truncated or damaged: %w", br.err)
	}
	return h, nil
}

// Sniff names what a non-archive looks like, without quoting it (it may be an error page holding
// anything).
func Sniff(b []byte) string {
	t := bytes.TrimLeft(b, " \t\r\n\xef\xbb\xbf")
	lower := bytes.ToLower(t)
	switch {
	case len(t) == 0:
		return "empty data"
	case bytes.HasPrefix(lower, []byte("<?xm")) || bytes.HasPrefix(lower, []byte("<err")):
		return "an XML document (an error page from the storage service?)"
	case bytes.HasPrefix(t, []byte("<")):
		return "an HTML page (an error page?)"
	case bytes.HasPrefix(t, []byte("{")) || bytes.HasPrefix(t, []byte("[")):
		return "JSON (an API error?)"
	case bytes.HasPrefix(t, []byte("--")):
		return "a plain SQL dump (pg_dump -Fp), not a custom-format archive"
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "gzip data"
	default:
		return "unknown data"
	}
}

// reader decodes pg_dump's primitive types and keeps the first error.
type reader struct {
	r       io.Reader
	intSize int
	err     error
	buf     [16]byte
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return nil
	}
	return b
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// int reads pg_dump's integer: a sign byte, then intSize bytes little-endian.
func (r *reader) int() int {
	neg := r.byte()
	b := r.bytes(r.intSize)
	if r.err != nil {
		return 0
	}
	var le [8]byte
	copy(le[:], b)
	v := int(binary.LittleEndian.Uint64(le[:]))
	if neg != 0 {
		v = -v
	}
	return v
}

// str reads a length-prefixed string; length -1 is NULL, read as "".
func (r *reader) str() string {
	n := r.int()
	if r.err != nil || n <= 0 {
		return ""
	}
	if n > 1<<20 {
		r.err = fmt.Errorf("string of %d bytes in header", n)
		return ""
	}
	return string(r.bytes(n))
}
