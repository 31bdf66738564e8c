package cli

import (
	"net"
	"strings"
	"testing"
)

// TestVerifyScratchMistakeIsUsage: a scratch database that holds tables, or does not answer, is
// the caller's mistake: verify exits with the usage status, says what to do, and records no
// verdict for the (good) archive; an empty one then verifies it.
func TestVerifyScratchMistakeIsUsage(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 500)
	env := w.env("shop")
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	delete(env, "HEROKU_API_KEY")
	records := func() (n int) {
		for _, k := range w.keys() {
			if strings.HasSuffix(k, ".verified.json") {
				n++
			}
		}
		return n
	}

	used, usedDSN := w.pg.CreateDB(t, "scratch_used")
	w.pg.Exec(t, used, `CREATE TABLE orders (id int)`)
	code, out := w.run(env, "verify", "--restore-to", usedDSN)
	if code != ExitUsage || !strings.Contains(out, "is not empty (it holds table public.orders)") || !strings.Contains(out, "createdb NEW") {
		t.Errorf("verify into a database holding a table: exit %d, want %d and the fix", code, ExitUsage)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, out = w.run(env, "verify", "--restore-to", "postgres://verifier:pw-7c1d@"+addr+"/scratch?sslmode=disable")
	if code != ExitUsage || !strings.Contains(out, "does not answer") || !strings.Contains(out, "in --restore-to") || strings.Contains(out, "pw-7c1d") {
		t.Errorf("verify into a database that does not answer: exit %d, want %d and the fix, without the password", code, ExitUsage)
	}
	if n := records(); n != 0 {
		t.Fatalf("%d verification records written after scratch mistakes, want none", n)
	}

	_, scratch := w.pg.CreateDB(t, "scratch")
	if code, out := w.run(env, "verify", "--restore-to", scratch); code != ExitOK || !strings.Contains(out, "restored and counted") {
		t.Fatalf("verify into an empty database: exit %d", code)
	}
	if n := records(); n != 1 {
		t.Errorf("%d verification records after a verification, want 1", n)
	}
}
