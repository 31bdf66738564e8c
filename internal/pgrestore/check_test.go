package pgrestore

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A check answers one boolean, read-only; anything else is an error saying what came back, and
// the database URL is never in it.
func TestCheck(t *testing.T) {
	pg := testenv.StartPostgres(t)
	name, dsn := pg.CreateDB(t, "check")
	pg.Exec(t, name, "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 10);")
	o := Options{URL: dsn, PgBinDir: pg.BinDir, Name: "drill"}
	ctx := context.Background()
	for sql, want := range map[string]bool{"select count(*) = 10 from orders": true, "select count(*) > 10 from orders": false} {
		if got, err := Check(ctx, o, sql); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", sql, got, err, want)
		}
	}
	for sql, msg := range map[string]string{
		"select 42":                         `answered "42", not one boolean`,
		"select true union all select true": "not one boolean",
		"select * from nowhere":             "nowhere",
		"delete from orders":                "read-only transaction",
	} {
		_, err := Check(ctx, o, sql)
		if err == nil || !strings.Contains(err.Error(), msg) || strings.Contains(err.Error(), dsn) {
			t.Errorf("%s: %v, want an error with %q", sql, err, msg)
		}
	}
	if n, _ := pg.Query(name, "select count(*) from orders"); n != "10" {
		t.Errorf("a check changed the database: %s rows", n)
	}
}
