package cli

import (
	"strings"
	"testing"
)

// The way back: an archive is restored into the simulated Heroku database (a real pg_restore
// into real Postgres) through a presigned URL.
func TestRestore(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	_, db := w.database("shop", "DATABASE", 777)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup failed")
	}
	m, _ := w.manifest("shop", "DATABASE")
	w.pg.Exec(t, db, "DELETE FROM orders; DELETE FROM customers;") // the accident

	env := w.env("")
	delete(env, "BACKUP_TARGETS")
	before := len(w.sim.Requests())
	code, out := w.run(env, "restore", "--from", m.Key, "--to", "shop:DATABASE_URL")
	if code != ExitUsage || !strings.Contains(out, "--confirm shop") || len(w.sim.Requests()) != before {
		t.Fatalf("without --confirm: exit %d, %d requests", code, len(w.sim.Requests())-before)
	}
	code, out = w.run(env, "restore", "--from", m.Key, "--to", "shop:DATABASE_URL", "--confirm", "shop")
	if code != ExitOK || !strings.Contains(out, "restore finished") {
		t.Fatalf("restore: exit %d", code)
	}
	if got, err := w.pg.Query(db, "SELECT count(*) FROM orders"); err != nil || got != "777" {
		t.Errorf("orders after restore: %q %v, want 777", got, err)
	}
	code, out = w.run(env, "restore", "--from", "shop/DATABASE/no-such.dump", "--to", "shop", "--confirm", "shop")
	if code != ExitFailed || !strings.Contains(out, "cannot be read") {
		t.Errorf("missing archive: exit %d", code)
	}
}
