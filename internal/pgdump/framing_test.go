package pgdump

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Options.FramingOnly decompresses nothing of the tables it names in a compressed archive: each
// is read for its chunk framing only, its rows and bytes unknown, while the other tables are
// decompressed and counted; truncation and trailing bytes are still found. In an archive without
// compression every table is counted.
func TestCheckFramingOnly(t *testing.T) {
	all := func(string, string) bool { return true }
	invoices := func(schema, name string) bool { return schema == "billing" && name == "invoices" }
	for _, f := range formats() {
		t.Run(fmt.Sprintf("1.%d/%s", f.vmin, f.alg), func(t *testing.T) {
			a := shop(f.vmin, f.alg, true)
			b := a.bytes(t)
			full, err := Check(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			for _, which := range []struct {
				name string
				skip func(string, string) bool
			}{{"every table", all}, {"billing.invoices", invoices}} {
				sum, err := CheckWith(bytes.NewReader(b), Options{FramingOnly: which.skip})
				if err != nil {
					t.Fatal(err)
				}
				if len(sum.Tables) != len(full.Tables) || sum.Bytes != full.Bytes || sum.DataBlocks != full.DataBlocks || sum.LargeObjects != full.LargeObjects ||
					sum.CompressedDataBytes != full.CompressedDataBytes {
					t.Fatalf("%s framing only: %+v, whole %+v", which.name, sum, full)
				}
				var skipped int64
				for i, tb := range sum.Tables {
					switch {
					case f.alg == "none" || !which.skip(tb.Schema, tb.Name):
						if tb != full.Tables[i] {
							t.Errorf("%s framing only: %+v, whole %+v", which.name, tb, full.Tables[i])
						}
					case tb.Rows != -1 || tb.Bytes != -1 || !tb.FramingOnly || tb.Name != full.Tables[i].Name:
						t.Errorf("%s framing only: %+v", which.name, tb)
					default:
						skipped += full.Tables[i].Bytes
					}
				}
				if f.alg != "none" && (skipped == 0 || sum.DataBytes != full.DataBytes-skipped || sum.InflatedDataBytes >= full.InflatedDataBytes) {
					t.Errorf("%s framing only: %d data bytes (whole %d, skipped %d), %d inflated (whole %d)",
						which.name, sum.DataBytes, full.DataBytes, skipped, sum.InflatedDataBytes, full.InflatedDataBytes)
				}
			}
			for _, cut := range []int{a.tocEnd + 7, (a.tocEnd + len(b)) / 2, len(b) - 3} {
				if _, err := CheckWith(bytes.NewReader(b[:cut]), Options{FramingOnly: all}); !errors.Is(err, ErrTruncated) {
					t.Errorf("cut at %d of %d: %v", cut, len(b), err)
				}
			}
			if _, err := CheckWith(bytes.NewReader(append(b, 1, 0, 0)), Options{FramingOnly: all}); err == nil || !strings.Contains(err.Error(), "trailing garbage") {
				t.Errorf("trailing bytes: %v", err)
			}
		})
	}
}
