package verify

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// TestScratchChecked: the scratch database is checked on a real server before any archive is
// read: an empty one passes, one holding tables or one that does not answer is ErrScratch,
// saying what to do, without the URL's password.
func TestScratchChecked(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	if err := Scratch(ctx, Options{}); err != nil {
		t.Errorf("no --restore-to: %v", err)
	}
	_, empty := pg.CreateDB(t, "scratch_empty")
	if err := Scratch(ctx, Options{RestoreTo: empty, PgBinDir: pg.BinDir}); err != nil {
		t.Errorf("an empty database: %v", err)
	}

	used, usedDSN := pg.CreateDB(t, "scratch_used")
	pg.Exec(t, used, `CREATE TABLE orders (id int)`)
	err := Scratch(ctx, Options{RestoreTo: usedDSN, PgBinDir: pg.BinDir})
	if !errors.Is(err, ErrScratch) || !strings.Contains(err.Error(), "scratch database "+used+" on "+pg.Host+" is not empty (it holds table public.orders)") ||
		!strings.Contains(err.Error(), "give --restore-to an empty database (createdb NEW)") {
		t.Errorf("a database holding a table: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const password = "s3cret-pw-9f8e"
	err = Scratch(ctx, Options{RestoreTo: "postgres://verifier:" + password + "@" + addr + "/scratch?sslmode=disable", PgBinDir: pg.BinDir})
	if !errors.Is(err, ErrScratch) || !strings.Contains(err.Error(), "scratch database scratch on 127.0.0.1 does not answer") ||
		!strings.Contains(err.Error(), "check the host, port, user and password in --restore-to") {
		t.Errorf("a database that does not answer: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), password) {
		t.Errorf("the error shows the password: %v", err)
	}
	missing := strings.Replace(empty, "/scratch_empty", "/no_such_db", 1)
	if err := Scratch(ctx, Options{RestoreTo: missing, PgBinDir: pg.BinDir}); !errors.Is(err, ErrScratch) || !strings.Contains(err.Error(), "no_such_db") {
		t.Errorf("a database that does not exist: %v", err)
	}
}
