package pgdump

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// header builds a custom-format header of the given format version.
func header(vmaj, vmin byte, compression int, algo byte) []byte {
	var b bytes.Buffer
	b.WriteString("PGDMP")
	b.Write([]byte{vmaj, vmin, 0, 4, 8, 1})
	wint := func(v int) {
		sign := byte(0)
		if v < 0 {
			sign, v = 1, -v
		}
		b.WriteByte(sign)
		b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	wstr := func(s string) { wint(len(s)); b.WriteString(s) }
	if vmin >= 15 {
		b.WriteByte(algo)
	} else {
		wint(compression)
	}
	for _, v := range []int{1, 2, 3, 24, 10, 126, 0} {
		wint(v)
	}
	wstr("shop")
	wstr("16.4")
	wstr("16.4 (Ubuntu)")
	return b.Bytes()
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		version   string
		compress  string
		dbVersion string
	}{
		{"pg15 default compression", header(1, 14, -1, 0), "1.14.0", "gzip", "16.4"},
		{"pg15 uncompressed", header(1, 14, 0, 0), "1.14.0", "none", "16.4"},
		{"pg16 lz4", header(1, 15, 0, 2), "1.15.0", "lz4", "16.4"},
		{"pg17 zstd", header(1, 16, 0, 3), "1.16.0", "zstd", "16.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if h.FormatVersion != tt.version || h.Compression != tt.compress || h.ServerVersion != tt.dbVersion ||
				h.Database != "shop" || h.DumpVersion != "16.4 (Ubuntu)" || h.Created.Year() != 2026 || h.Created.Month() != 11 {
				t.Errorf("header = %+v", h)
			}
		})
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	full := header(1, 14, -1, 0)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a pg_dump custom-format archive"},
		{"html", []byte("  <!DOCTYPE html><html><body>502</body></html>"), "HTML page"},
		{"s3 xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>`), "XML document"},
		{"plain sql", []byte("--\n-- PostgreSQL database dump\n--\n"), "plain SQL dump"},
		{"truncated", full[:len(full)-5], "truncated"},
		{"future format", header(1, 17, 0, 0), "1.17.0 is newer"},
		{"tar format", append([]byte("PGDMP\x01\x0e\x00\x04\x08\x03"), make([]byte, 60)...), "not the custom format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := ReadHeader(bytes.NewReader([]byte("<html>"))); !errors.Is(err, ErrNotArchive) {
		t.Errorf("an HTML page is not reported as ErrNotArchive: %v", err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(header(1, 14, -1, 0))
	f.Add(header(1, 15, 0, 3))
	f.Add([]byte("PGDMP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadHeader(bytes.NewReader(b)) // must not panic or allocate without bound
	})
}
