// Package pgdump reads pg_dump custom-format archives (the format of Heroku backups) without Postgres.
package pgdump

import (
	"bytes"
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
	maxVersion = 0x0110FF // 1.16.x: pg_restore reads every revision of its newest minor version
	vers1_14   = 0x010E00 // TOC entries gain the table access method
	vers1_15   = 0x010F00 // the header names the compression algorithm instead of a zlib level
	vers1_16   = 0x011000 // TOC entries gain relkind; BLOB METADATA entries, several BLOBS entries
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
	return readHeader(newSrc(r, true))
}

// maxHeaderString bounds the database name and version strings of the header.
const maxHeaderString = 1 << 20

// readHeader follows ReadHead in pg_backup_archiver.c.
func readHeader(s *src) (Header, error) {
	var h Header
	if !s.fill(len(Magic)) {
		if s.err != nil && !errors.Is(s.err, io.EOF) {
			return h, fmt.Errorf("%w: %w", ErrNotArchive, s.err)
		}
		return h, fmt.Errorf("%w: it starts like %s", ErrNotArchive, Sniff(s.buf[s.i:s.n]))
	}
	if magic := s.buf[s.i : s.i+len(Magic)]; string(magic) != Magic {
		return h, fmt.Errorf("%w: it starts like %s", ErrNotArchive, Sniff(magic))
	}
	s.advance(len(Magic))
	truncated := func(err error) (Header, error) {
		return h, fmt.Errorf("pgdump: header truncated or damaged: %w", err)
	}
	var v [6]byte
	for i := range v {
		b, err := s.byte("the archive header")
		if err != nil {
			return truncated(err)
		}
		v[i] = b
	}
	vmaj, vmin, vrev := int(v[0]), int(v[1]), int(v[2])
	h.version = vmaj<<16 | vmin<<8 | vrev
	h.FormatVersion = fmt.Sprintf("%d.%d.%d", vmaj, vmin, vrev)
	if h.version < minVersion {
		return h, fmt.Errorf("pgdump: archive format %s is older than pg_dump 9.5 writes; not supported", h.FormatVersion)
	}
	if h.version > maxVersion {
		return h, fmt.Errorf("pgdump: archive format %s is newer than this pgoffsite knows (up to 1.16, pg_dump 17); upgrade pgoffsite", h.FormatVersion)
	}
	h.IntSize, h.OffSize = int(v[3]), int(v[4])
	if h.IntSize < 1 || h.IntSize > 8 || h.OffSize < 1 || h.OffSize > 8 {
		return h, fmt.Errorf("pgdump: implausible integer sizes %d/%d in header", h.IntSize, h.OffSize)
	}
	s.intSize, s.offSize = h.IntSize, h.OffSize
	if f := v[5]; f != 1 {
		return h, fmt.Errorf("%w: format code %d is not the custom format (-Fc)", ErrNotArchive, f)
	}
	if h.version >= vers1_15 {
		alg, err := s.byte("the archive header")
		if err != nil {
			return truncated(err)
		}
		switch alg {
		case 0:
			h.Compression = "none"
		case 1:
			h.Compression = "gzip"
		case 2:
			h.Compression = "lz4"
		case 3:
			h.Compression = "zstd"
		default:
			return h, fmt.Errorf("pgdump: unknown compression algorithm %d in a format %s archive", alg, h.FormatVersion)
		}
	} else {
		// Before 1.15 the header holds a zlib level: 0 none, -1 default, 1-9.
		level, err := s.int("the archive header")
		if err != nil {
			return truncated(err)
		}
		h.CompressionLevel = int(level)
		h.Compression = "gzip"
		if level == 0 {
			h.Compression = "none"
		}
	}
	var tm [7]int
	for i := range tm {
		n, err := s.int("the archive header")
		if err != nil {
			return truncated(err)
		}
		if n < -1<<31 || n > 1<<31 {
			return h, fmt.Errorf("pgdump: implausible creation time field %d in header", n)
		}
		tm[i] = int(n)
	}
	sec, min, hour, mday, mon, year := tm[0], tm[1], tm[2], tm[3], tm[4], tm[5] // tm[6] is isdst
	h.Created = time.Date(year+1900, time.Month(mon+1), mday, hour, min, sec, 0, time.UTC)
	for _, f := range []*string{&h.Database, &h.ServerVersion, &h.DumpVersion} {
		str, _, err := s.str("the archive header", maxHeaderString)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				return truncated(err)
			}
			return h, fmt.Errorf("pgdump: header damaged: %w", err)
		}
		*f = str
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
