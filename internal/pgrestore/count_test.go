package pgrestore

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// CountRows counts every table that has a count, in one query per session, each answer given
// to its own table whatever order the sessions end in; odd names are quoted; a table that is
// not there fails the count, naming how many tables it was counting.
func TestCountRows(t *testing.T) {
	pg := testenv.StartPostgres(t)
	db, dsn := pg.CreateDB(t, "count")
	pg.Exec(t, db, `CREATE SCHEMA "Odd ""Schema""";
		CREATE TABLE big AS SELECT g FROM generate_series(1, 50000) g;
		CREATE TABLE "Odd ""Schema"""."we""ird" AS SELECT g FROM generate_series(1, 7) g;
		CREATE TABLE small AS SELECT g FROM generate_series(1, 3) g;
		CREATE TABLE mid AS SELECT g FROM generate_series(1, 900) g;
		CREATE TABLE inserted AS SELECT g FROM generate_series(1, 5) g;`)
	tables := []pgdump.Table{
		{Schema: "public", Name: "big", Rows: 50000, Bytes: 1 << 20},
		{Schema: `Odd "Schema"`, Name: `we"ird`, Rows: 7, Bytes: 100},
		{Schema: "public", Name: "small", Rows: 3, Bytes: -1},
		{Schema: "public", Name: "inserted", Rows: -1, Bytes: 50},
		{Schema: "public", Name: "mid", Rows: 900, Bytes: 9000},
	}
	o := Options{URL: dsn, PgBinDir: pg.BinDir}
	for _, jobs := range []int{1, 2, 4, 9} {
		got, err := CountRows(context.Background(), o, tables, jobs)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("jobs %d: %+v", jobs, got)
		}
		if err := SameCounts(tables, got, "the database"); err != nil {
			t.Errorf("jobs %d: %v", jobs, err)
		}
	}
	pg.Exec(t, db, "DROP TABLE mid")
	_, err := CountRows(context.Background(), o, tables, 2)
	if err == nil || !strings.Contains(err.Error(), "count the rows of") || !strings.Contains(err.Error(), `relation "public.mid" does not exist`) {
		t.Errorf("a missing table: %v", err)
	}
}

// A count's deadline grows with the bytes it scans, and a size a planted manifest makes up
// cannot make it endless.
func TestCountWithin(t *testing.T) {
	base := ConnectTimeout + time.Minute
	for _, c := range []struct {
		bytes int64
		want  time.Duration
	}{
		{-1, base},
		{0, base},
		{100 << 20, base + 10*time.Second},
		{1 << 62, base + countMax},
		{math.MaxInt64, base + countMax},
	} {
		if got := countWithin(c.bytes); got != c.want {
			t.Errorf("%d bytes: %s, want %s", c.bytes, got, c.want)
		}
	}
}
