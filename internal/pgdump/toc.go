package pgdump

import (
	"errors"
	"fmt"
	"io"
)

// Entry is one item of the archive's table of contents (pg_backup_archiver.c, ReadToc, plus the
// custom format's data offset from _ReadExtraToc).
type Entry struct {
	DumpID     int
	HadDumper  bool   // the entry has a data block (table rows, large objects)
	TableOID   string // catalog OIDs, kept as the decimal strings the archive holds
	OID        string
	Tag        string // object name, e.g. the table name
	Desc       string // object type, e.g. "TABLE", "TABLE DATA", "BLOBS"
	Section    int    // SectionNone … SectionPostData
	Defn       string
	DropStmt   string
	CopyStmt   string
	Namespace  string
	Tablespace string
	TableAM    string
	RelKind    byte // format 1.16 and later; 0 when absent
	Owner      string
	Deps       []int
	DataState  int   // DataPosNotSet, DataPosSet or DataNone
	Offset     int64 // where the entry's data block starts, when DataState is DataPosSet
}

// Sections of the TOC (teSection in pg_backup.h).
const (
	SectionNone     = 1
	SectionPreData  = 2
	SectionData     = 3
	SectionPostData = 4
)

// Data states of a TOC entry (K_OFFSET_* in pg_backup_archiver.h). pg_dump writes an archive
// with DataPosNotSet everywhere when its output cannot seek back to fill in the offsets — when it
// writes to a pipe, as Heroku's backups are made.
const (
	DataPosNotSet = 1
	DataPosSet    = 2
	DataNone      = 3
)

// Limits on what one TOC entry may claim. Definitions of functions and views can be large; names
// cannot (Postgres identifiers are at most 63 bytes, tags of comments and ACLs a few of them).
const (
	maxDefn      = 256 << 20
	maxName      = 1 << 20
	maxTOCCount  = 1 << 28
	maxDepsPerTE = 1 << 22
)

// ReadTOC reads the header and the table of contents and stops there. It reads ahead of the TOC,
// so r is not left at the first data block.
func ReadTOC(r io.Reader) (Header, []Entry, error) {
	s := newSrc(r, false)
	h, err := readHeader(s)
	if err != nil {
		return h, nil, err
	}
	var entries []Entry
	err = readTOC(s, h, true, func(e *Entry) error {
		entries = append(entries, *e)
		return nil
	})
	return h, entries, err
}

// readTOC reads every TOC entry and hands each to fn; the Entry is reused between calls. Unless
// full, the large statements (Defn, DropStmt, CopyStmt), the owner, tablespace, access method,
// OIDs and dependencies are checked and skipped rather than kept; CopyStmt is then "COPY" or "".
func readTOC(s *src, h Header, full bool, fn func(*Entry) error) error {
	at := s.off
	count, err := s.int("the TOC entry count")
	if err != nil {
		return fmt.Errorf("pgdump: %w", err)
	}
	if count < 0 || count > maxTOCCount {
		return fmt.Errorf("pgdump: TOC entry count %d at byte %d is implausible; the archive is damaged", count, at)
	}
	seen := make(map[int]struct{}, min(count, 1<<16))
	var e Entry
	for i := int64(0); i < count; i++ {
		at := s.off
		if err := readEntry(s, h, full, &e); err != nil {
			if errors.Is(err, ErrTruncated) {
				return fmt.Errorf("pgdump: TOC entry %d of %d (at byte %d): %w", i+1, count, at, err)
			}
			return fmt.Errorf("pgdump: TOC entry %d of %d (at byte %d) is damaged: %w", i+1, count, at, err)
		}
		if _, dup := seen[e.DumpID]; dup {
			return fmt.Errorf("pgdump: TOC entry %d of %d (at byte %d) repeats dump id %d; the TOC is damaged", i+1, count, at, e.DumpID)
		}
		seen[e.DumpID] = struct{}{}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// readEntry follows ReadToc and _ReadExtraToc, and checks what pg_dump always writes the same way,
// since the TOC has no checksum of its own.
func readEntry(s *src, h Header, full bool, e *Entry) error {
	deps := e.Deps[:0] // reused when the caller keeps no entries
	if full {
		deps = nil
	}
	*e = Entry{}
	id, err := s.int("dump id")
	if err != nil {
		return err
	}
	if id <= 0 || id > 1<<31 {
		return fmt.Errorf("dump id %d is out of range", id)
	}
	e.DumpID = int(id)
	had, err := s.int("data flag")
	if err != nil {
		return err
	}
	if had != 0 && had != 1 {
		return fmt.Errorf("dump id %d: data flag %d is neither 0 nor 1", e.DumpID, had)
	}
	e.HadDumper = had == 1

	// OIDs are written with %u.
	for _, f := range []*string{&e.TableOID, &e.OID} {
		v, null, err := s.short("OID", 32)
		if err != nil {
			return fmt.Errorf("dump id %d: %w", e.DumpID, err)
		}
		if _, ok := decimal(v); null || !ok || len(v) > 10 {
			return fmt.Errorf("dump id %d: OID %q is not a number", e.DumpID, v)
		}
		if full {
			*f = string(v)
		}
	}
	if e.Tag, _, err = s.str("tag", maxName); err != nil {
		return fmt.Errorf("dump id %d: %w", e.DumpID, err)
	}
	desc, null, err := s.short("object type", 256)
	if err != nil {
		return fmt.Errorf("dump id %d: %w", e.DumpID, err)
	}
	if null || !plausibleDesc(desc) {
		return fmt.Errorf("dump id %d: object type %q is not one pg_dump writes", e.DumpID, desc)
	}
	e.Desc = internDesc(desc)
	sec, err := s.int("section")
	if err != nil {
		return err
	}
	if sec < SectionNone || sec > SectionPostData {
		return fmt.Errorf("dump id %d (%s %s): section %d is not 1-4", e.DumpID, e.Desc, e.Tag, sec)
	}
	e.Section = int(sec)

	text := func(dst *string, what string, max int64) error {
		if full {
			v, _, err := s.str(what, max)
			*dst = v
			return err
		}
		n, _, err := s.skipStr(what)
		if n > max && err == nil {
			err = fmt.Errorf("%s of %d bytes is longer than the %d this reader accepts", what, n, max)
		}
		return err
	}
	if err := text(&e.Defn, "definition", maxDefn); err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if err := text(&e.DropStmt, "drop statement", maxDefn); err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if full {
		e.CopyStmt, _, err = s.str("COPY statement", maxDefn)
	} else {
		var n int64
		if n, _, err = s.skipStr("COPY statement"); n > 0 {
			e.CopyStmt = "COPY"
		}
	}
	if err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if e.Namespace, _, err = s.str("schema", maxName); err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if err := text(&e.Tablespace, "tablespace", maxName); err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if h.version >= vers1_14 {
		if err := text(&e.TableAM, "table access method", maxName); err != nil {
			return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
		}
	}
	if h.version >= vers1_16 {
		rk, err := s.int("relkind")
		if err != nil {
			return err
		}
		if rk < 0 || rk > 127 {
			return fmt.Errorf("dump id %d (%s %s): relkind %d is not a character", e.DumpID, e.Desc, e.Tag, rk)
		}
		e.RelKind = byte(rk)
	}
	if err := text(&e.Owner, "owner", maxName); err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	// Format 1.9 and later store "false" here (tables WITH OIDS are gone).
	withOids, _, err := s.short("WITH OIDS flag", 8)
	if err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	if string(withOids) != "false" && string(withOids) != "true" {
		return fmt.Errorf("dump id %d (%s %s): WITH OIDS flag %q is neither true nor false", e.DumpID, e.Desc, e.Tag, withOids)
	}

	// Dependencies: dump ids as decimal strings, ended by a NULL string.
	for n := 0; ; n++ {
		v, null, err := s.short("dependency", 16)
		if err != nil {
			return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
		}
		if null {
			break
		}
		d, ok := decimal(v)
		if !ok || d <= 0 || d > 1<<31 {
			return fmt.Errorf("dump id %d (%s %s): dependency %q is not a dump id", e.DumpID, e.Desc, e.Tag, v)
		}
		if n >= maxDepsPerTE {
			return fmt.Errorf("dump id %d (%s %s): more than %d dependencies", e.DumpID, e.Desc, e.Tag, maxDepsPerTE)
		}
		if full {
			deps = append(deps, int(d))
		}
	}
	e.Deps = deps

	flag, off, err := s.offset("data offset")
	if err != nil {
		return fmt.Errorf("dump id %d (%s %s): %w", e.DumpID, e.Desc, e.Tag, err)
	}
	// _ArchiveEntry marks entries without a data dumper K_OFFSET_NO_DATA, and only _StartData
	// and _StartLOs set a position, so the flag and the data flag must agree.
	if e.HadDumper == (flag == DataNone) {
		return fmt.Errorf("dump id %d (%s %s): data offset flag %d contradicts data flag %d", e.DumpID, e.Desc, e.Tag, flag, had)
	}
	e.DataState, e.Offset = flag, off
	return nil
}

// plausibleDesc accepts printable ASCII; pg_dump's object types are upper-case words.
func plausibleDesc(d []byte) bool {
	if len(d) == 0 {
		return false
	}
	for _, c := range d {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// internDesc avoids one allocation per entry for the few dozen object types there are.
var descs = func() map[string]string {
	m := map[string]string{}
	for _, d := range []string{"ACL", "AGGREGATE", "BLOB", "BLOB METADATA", "BLOBS", "CAST", "CHECK CONSTRAINT",
		"COLLATION", "COMMENT", "CONSTRAINT", "CONVERSION", "DATABASE", "DATABASE PROPERTIES", "DEFAULT",
		"DEFAULT ACL", "DOMAIN", "ENCODING", "EVENT TRIGGER", "EXTENSION", "FK CONSTRAINT", "FOREIGN DATA WRAPPER",
		"FOREIGN TABLE", "FUNCTION", "INDEX", "INDEX ATTACH", "LARGE OBJECT", "MATERIALIZED VIEW",
		"MATERIALIZED VIEW DATA", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY", "PROCEDURAL LANGUAGE",
		"PROCEDURE", "PUBLICATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "RULE",
		"SCHEMA", "SEARCHPATH", "SECURITY LABEL", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SERVER",
		"SHELL TYPE", "STATISTICS", "STATISTICS DATA", "STDSTRINGS", "SUBSCRIPTION", "SUBSCRIPTION TABLE", "TABLE",
		"TABLE ATTACH", "TABLE DATA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER",
		"TEXT SEARCH TEMPLATE", "TRANSFORM", "TRIGGER", "TYPE", "USER MAPPING", "VIEW"} {
		m[d] = d
	}
	return m
}()

func internDesc(d []byte) string {
	if v, ok := descs[string(d)]; ok {
		return v
	}
	return string(d)
}

// decimal parses the unsigned decimal numbers pg_dump writes for OIDs and dump ids.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
