package pgdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// shopDB is a database with several schemas, a table of many rows holding NULLs, tabs, newlines,
// backslashes, empty strings and a lone "\.", empty tables, a partitioned table, a materialized
// view, a sequence and large objects (one with an OID above 2^31).
const shopDB = `
CREATE SCHEMA sales;
CREATE SCHEMA "odd schema";
CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text, note text, amount numeric, created timestamptz);
INSERT INTO sales.orders
SELECT g, 'customer ' || (g % 1000),
       CASE WHEN g % 7 = 0 THEN NULL
            WHEN g % 11 = 0 THEN E'tab\there'
            WHEN g % 13 = 0 THEN E'new\nline\r\nand more'
            WHEN g % 17 = 0 THEN E'back\\slash\\'
            WHEN g % 19 = 0 THEN ''
            WHEN g % 23 = 0 THEN E'\\.'
            ELSE md5(g::text) END,
       g * 1.5, '2024-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 150000) g;
CREATE TABLE public.empty (id int);
CREATE TABLE "odd schema"."Odd Table" (s text);
INSERT INTO "odd schema"."Odd Table" VALUES (''), (E'\\.'), (NULL), (E'\\.\n'), ('x');
CREATE TABLE public.blank (s text);
INSERT INTO public.blank SELECT '' FROM generate_series(1, 50);
CREATE TABLE public.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO public.events SELECT g, '2024-01-01'::date + (g % 700) FROM generate_series(1, 20000) g;
CREATE TABLE sales.blobs (b bytea);
INSERT INTO sales.blobs SELECT decode(md5(g::text) || md5((g+1)::text), 'hex') FROM generate_series(1, 3000) g;
CREATE MATERIALIZED VIEW sales.totals AS SELECT customer, sum(amount) FROM sales.orders GROUP BY customer;
CREATE SEQUENCE public.counter;
SELECT setval('public.counter', 42);
SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 2000), 'hex')) FROM generate_series(1, 25) g;
SELECT lo_from_bytea(3000000001, 'an OID above 2^31');
SELECT lo_from_bytea(0, '');
`

var (
	shopOnce sync.Once
	shopName string
	shopErr  error
)

// shopDatabase creates shopDB once per test binary.
func shopDatabase(t testing.TB) (*testenv.Postgres, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	shopOnce.Do(func() {
		name, _ := pg.CreateDB(t, "pgdump_shop")
		if out, err := pg.Query(name, shopDB); err != nil {
			shopErr = fmt.Errorf("%v\n%s", err, out)
		}
		shopName = name
	})
	if shopErr != nil {
		t.Fatal(shopErr)
	}
	return pg, shopName
}

// rowCounts asks Postgres for the rows of every ordinary table (partitions included).
func rowCounts(t testing.TB, pg *testenv.Postgres, db string) map[string]int64 {
	t.Helper()
	out, err := pg.Query(db, `
SELECT n.nspname || '.' || c.relname || '|' ||
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	counts := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		name, n, ok := strings.Cut(line, "|")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Fatalf("unexpected line %q", line)
		}
		counts[name] = v
	}
	return counts
}

func largeObjects(t testing.TB, pg *testenv.Postgres, db string) int {
	t.Helper()
	out, err := pg.Query(db, "SELECT count(*) FROM pg_largeobject_metadata")
	n, perr := strconv.Atoi(out)
	if err != nil || perr != nil {
		t.Fatalf("%v %v: %s", err, perr, out)
	}
	return n
}

func pgDump(t testing.TB, pg *testenv.Postgres, db string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	args = append(append([]string{"-Fc", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.User}, args...), db)
	cmd := exec.CommandContext(ctx, pg.Bin("pg_dump"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if stderr.Len() > 0 {
			t.Logf("pg_dump: %s", stderr.String())
		}
	})
	return cmd
}

// dumpFile has pg_dump write to a file, which it can seek, so the TOC gets data offsets.
func dumpFile(t testing.TB, pg *testenv.Postgres, db string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dump")
	if err := pgDump(t, pg, db, append(args, "-f", path)...).Run(); err != nil {
		t.Fatalf("pg_dump %v: %v", args, err)
	}
	return path
}

func checkSummary(t *testing.T, sum Summary, rows map[string]int64, los int) {
	t.Helper()
	got := map[string]int64{}
	for _, tb := range sum.Tables {
		got[tb.Schema+"."+tb.Name] = tb.Rows
	}
	for name, n := range rows {
		if got[name] != n {
			t.Errorf("table %s: %d rows in the archive, %d in the database", name, got[name], n)
		}
	}
	if len(got) != len(rows) {
		t.Errorf("archive has %d tables, the database %d: %v", len(got), len(rows), got)
	}
	if sum.LargeObjects != los {
		t.Errorf("archive has %d large objects, the database %d", sum.LargeObjects, los)
	}
}

// Every compression level pg_dump 15 offers, written to a file (offsets set) and to a pipe
// (offsets not set, as Heroku's backups are), checked as pg_dump writes it.
func TestCheckPgDump(t *testing.T) {
	pg, db := shopDatabase(t)
	rows := rowCounts(t, pg, db)
	los := largeObjects(t, pg, db)
	if rows["sales.orders"] != 150000 || rows["public.empty"] != 0 || rows["public.events_2025"] == 0 || los != 27 {
		t.Fatalf("unexpected database: %v, %d large objects", rows, los)
	}
	for level := 0; level <= 9; level++ {
		wantComp := "gzip"
		if level == 0 {
			wantComp = "none"
		}
		t.Run(fmt.Sprintf("Z%d/file", level), func(t *testing.T) {
			path := dumpFile(t, pg, db, "-Z", strconv.Itoa(level))
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			start := time.Now()
			sum, err := Check(f)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes checked in %v (%.0f MB/s)", sum.Bytes, time.Since(start), float64(sum.Bytes)/time.Since(start).Seconds()/1e6)
			checkSummary(t, sum, rows, los)
			if sum.Header.Compression != wantComp || (level > 0 && sum.Header.CompressionLevel != level) {
				t.Errorf("header %+v", sum.Header)
			}
			assertOffsets(t, path, true)
		})
		t.Run(fmt.Sprintf("Z%d/pipe", level), func(t *testing.T) {
			cmd := pgDump(t, pg, db, "-Z", strconv.Itoa(level))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var saved bytes.Buffer
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var sum Summary
			if level%2 == 0 {
				sum, err = Check(io.TeeReader(out, &saved))
			} else {
				c := NewChecker(Options{})
				if _, err := io.Copy(io.MultiWriter(c, &saved), out); err != nil {
					t.Fatal(err)
				}
				sum, err = c.Close()
			}
			if werr := cmd.Wait(); werr != nil {
				t.Fatalf("pg_dump: %v", werr)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSummary(t, sum, rows, los)
			if sum.Header.Compression != wantComp {
				t.Errorf("header %+v", sum.Header)
			}
			path := filepath.Join(t.TempDir(), "dump")
			if err := os.WriteFile(path, saved.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			assertOffsets(t, path, false)
		})
	}
}

// assertOffsets makes sure an archive holds data offsets exactly when pg_dump could seek.
func assertOffsets(t *testing.T, path string, set bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, entries, err := ReadTOC(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.HadDumper && (e.DataState == DataPosSet) != set {
			t.Fatalf("%s %s: data state %d", e.Desc, e.Tag, e.DataState)
		}
	}
}

func TestCheckPgDumpOptions(t *testing.T) {
	pg, db := shopDatabase(t)
	t.Run("inserts", func(t *testing.T) {
		sum := checkFile(t, dumpFile(t, pg, db, "--inserts", "-t", "public.blank", "-t", "sales.blobs"))
		if len(sum.Tables) != 2 || sum.Tables[0].Rows != -1 || sum.Tables[0].Bytes == 0 || sum.LargeObjects != 0 {
			t.Errorf("%+v", sum)
		}
	})
	t.Run("schema only", func(t *testing.T) {
		sum := checkFile(t, dumpFile(t, pg, db, "--schema-only"))
		if len(sum.Tables) != 0 || sum.DataBlocks != 0 || sum.CountsByDesc["TABLE"] == 0 {
			t.Errorf("%+v", sum)
		}
	})
	t.Run("data only", func(t *testing.T) {
		sum := checkFile(t, dumpFile(t, pg, db, "--data-only"))
		checkSummary(t, sum, rowCounts(t, pg, db), largeObjects(t, pg, db))
	})
	t.Run("empty database", func(t *testing.T) {
		empty, _ := pg.CreateDB(t, "pgdump_empty")
		sum := checkFile(t, dumpFile(t, pg, empty))
		if len(sum.Tables) != 0 || sum.DataBlocks != 0 || sum.LargeObjects != 0 {
			t.Errorf("%+v", sum)
		}
	})
}

func checkFile(t *testing.T, path string) Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Check(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bytes != int64(len(b)) {
		t.Errorf("checked %d of %d bytes", sum.Bytes, len(b))
	}
	return sum
}

// Damage to a real archive is reported, and pg_restore agrees that it is damage.
func TestCheckPgDumpDamage(t *testing.T) {
	pg, db := shopDatabase(t)
	for _, mode := range []string{"file", "pipe"} {
		var b []byte
		if mode == "file" {
			var err error
			if b, err = os.ReadFile(dumpFile(t, pg, db, "-Z", "6")); err != nil {
				t.Fatal(err)
			}
		} else {
			var err error
			if b, err = pgDump(t, pg, db, "-Z", "6").Output(); err != nil {
				t.Fatal(err)
			}
		}
		_, entries, err := ReadTOC(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var orders Entry
		for _, e := range entries {
			if e.Desc == "TABLE DATA" && e.Tag == "orders" {
				orders = e
			}
		}
		blockAt := orderBlock(t, b, orders.DumpID)
		if mode == "file" && blockAt != orders.Offset {
			t.Fatalf("block at %d, TOC says %d", blockAt, orders.Offset)
		}

		t.Run(mode+"/flipped data", func(t *testing.T) {
			c := bytes.Clone(b)
			c[blockAt+5000] ^= 0x20
			_, err := Check(bytes.NewReader(c))
			want := fmt.Sprintf("pgdump: data block for table sales.orders (dump id %d) at byte %d: gzip: ", orders.DumpID, blockAt)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v, want it to start with %q", err, want)
			}
			t.Log(err)
			pgRestoreFails(t, pg, c)
		})
		t.Run(mode+"/flipped TOC", func(t *testing.T) {
			// The sign byte of the first entry's dump id, then its data flag, then the entry count.
			h, err := ReadHeader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			tocAt := headerLen(h)
			for _, at := range []int{tocAt + 5, tocAt + 10, tocAt + 1} {
				c := bytes.Clone(b)
				c[at] ^= 0xff
				_, err := Check(bytes.NewReader(c))
				if err == nil || !strings.Contains(err.Error(), "TOC") {
					t.Fatalf("byte %d: %v", at, err)
				}
				t.Log(err)
			}
		})
		t.Run(mode+"/truncated", func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			cuts := []int{len(b) - 1, len(b) - 2, len(b) / 2, int(blockAt), int(blockAt) + 1}
			for i := 0; i < 3000; i++ {
				cuts = append(cuts, i) // the header and the TOC's beginning, byte by byte
			}
			for i := 0; i < 100; i++ { // each check reads up to its cut: more took minutes under -race
				cuts = append(cuts, rng.Intn(len(b)))
			}
			for _, cut := range cuts {
				_, err := Check(bytes.NewReader(b[:cut]))
				if cut >= len(Magic) && !errors.Is(err, ErrTruncated) || cut < len(Magic) && !errors.Is(err, ErrNotArchive) {
					t.Fatalf("cut at %d of %d: %v", cut, len(b), err)
				}
			}
			_, err := Check(bytes.NewReader(b[:len(b)-1]))
			t.Log(err)
			pgRestoreFails(t, pg, b[:len(b)-1])
		})
		t.Run(mode+"/trailing garbage", func(t *testing.T) {
			for _, tail := range []string{"\x00", "garbage", strings.Repeat("\x01", 1000)} {
				_, err := Check(bytes.NewReader(append(bytes.Clone(b), tail...)))
				if err == nil || !strings.Contains(err.Error(), "trailing garbage") {
					t.Fatalf("tail %q: %v", tail[:1], err)
				}
			}
		})
	}
}

// orderBlock finds a data block by its header: type 1 and the dump id as pg_dump writes it.
func orderBlock(t *testing.T, b []byte, id int) int64 {
	t.Helper()
	hdr := []byte{blkData, 0, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24), 0}
	i := bytes.LastIndex(b, hdr)
	if i < 0 {
		t.Fatalf("no data block for dump id %d", id)
	}
	return int64(i)
}

// headerLen is the size of the header ReadHeader parsed (pg_dump 15: a zlib level).
func headerLen(h Header) int {
	n := len(Magic) + 6 + 5 + 7*5
	for _, s := range []string{h.Database, h.ServerVersion, h.DumpVersion} {
		n += 5 + len(s)
	}
	return n
}

func pgRestoreFails(t *testing.T, pg *testenv.Postgres, archive []byte) {
	t.Helper()
	cmd := exec.Command(pg.Bin("pg_restore"), "-f", os.DevNull)
	cmd.Stdin = bytes.NewReader(archive)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("pg_restore accepts the damaged archive:\n%s", out)
	}
	t.Logf("pg_restore: %s", bytes.TrimSpace(out))
}

// The archives this package's own tests build are ones pg_restore reads, so the tests of
// formats the local pg_dump cannot write rest on the same layout.
func TestSyntheticArchivesRestore(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for vmin := byte(12); vmin <= 14; vmin++ {
		for _, alg := range []string{"none", "gzip"} {
			for _, offsets := range []bool{true, false} {
				b := shop(vmin, alg, offsets).bytes(t)
				cmd := exec.Command(pg.Bin("pg_restore"), "-f", "-")
				cmd.Stdin = bytes.NewReader(b)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("1.%d %s offsets=%v: pg_restore: %v\n%s", vmin, alg, offsets, err, stderr.Bytes())
				}
				for _, want := range []string{"COPY billing.invoices (id, label, amount) FROM stdin;\n0\tinvoice 0\t0.00\n",
					"4999\tinvoice 34993\t999.99\n\\.", "INSERT INTO public.inserted VALUES (2);", "lo_open('3000000000'"} {
					if !bytes.Contains(out, []byte(want)) {
						t.Errorf("1.%d %s offsets=%v: the script lacks %q", vmin, alg, offsets, want)
					}
				}
			}
		}
	}
}
