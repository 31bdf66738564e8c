package herokusim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// herokuCLI runs the real Heroku CLI (a client nobody here wrote) against a simulator.
type herokuCLI struct {
	bin string
	env []string
	dir string // its working directory
}

// newHerokuCLI points the CLI at origin (HTTPS, trusted through caFile).
func newHerokuCLI(t *testing.T, origin, caFile string) *herokuCLI {
	return &herokuCLI{bin: testenv.HerokuCLI(t), dir: t.TempDir(), env: testenv.HerokuCLIEnv(t, origin, caFile, token)}
}

// run runs one CLI command, with a deadline, and returns what it printed and whether it exited 0.
func (c *herokuCLI) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env, cmd.Dir = c.env, c.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	t.Logf("heroku %s: exit %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its stdout and stderr together.
func (c *herokuCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, args...)
	if err != nil {
		t.Fatalf("heroku %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out + errOut
}

// must fails the test unless every pattern matches text.
func must(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(text) {
			t.Errorf("%s: output does not match %q:\n%s", what, p, text)
		}
	}
}

// waitBackup waits until the backup num of app has finished successfully.
func waitBackup(t *testing.T, s *Sim, app string, num int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, ok := s.Backup(app, num); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup %d of %s not finished within a minute", num, app)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHerokuCLI drives the real Heroku CLI (v11) through every pg:backups command against the
// simulator served over HTTPS, on a real PostgreSQL database, and checks what each prints or
// writes — and, for a restore, what is in the database afterwards.
func TestHerokuCLI(t *testing.T) {
	testenv.HerokuCLI(t) // skip (fail in CI) before starting anything
	pg := testenv.StartPostgres(t)
	db, dsn := pg.CreateDB(t, "clishop")
	pg.Exec(t, db, "CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 500) g;")
	s := New(Options{Token: token, PgDump: pg.Bin("pg_dump"), CaptureDelay: 100 * time.Millisecond})
	s.AddApp("shop")
	addon := s.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", dsn)
	origin, caFile := ServeTLS(t, s)
	cli := newHerokuCLI(t, origin, caFile)
	var addonName string
	s.mu.Lock()
	addonName = s.addons[addon].name
	s.mu.Unlock()

	out := cli.ok(t, "pg:info", "-a", "shop")
	must(t, "pg:info", out, `=== DATABASE_URL`, `Plan:\s+Standard 0`, `Status:\s+Available`, `Add-on:\s+`+addonName)

	out = cli.ok(t, "pg:backups:capture", "-a", "shop")
	must(t, "pg:backups:capture", out, `Starting backup of `+addonName, `Backing up DATABASE to b001`)
	dump, ok := s.Backup("shop", 1)
	if !ok {
		t.Fatal("pg:backups:capture returned, but backup 1 has not succeeded")
	}

	out = cli.ok(t, "pg:backups", "-a", "shop")
	must(t, "pg:backups", out, `(?m)^\s*b001\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\s+Completed \d{4}-.*\s+[\d.]+ ?[KM]?B\s+DATABASE\s*$`,
		`No restores found`)

	out = cli.ok(t, "pg:backups:info", "b001", "-a", "shop")
	must(t, "pg:backups:info", out, `=== Backup b001`, `Database:\s+DATABASE`, `Status:\s+Completed`, `Type:\s+Manual`,
		`=== Backup Logs`, `Backup b001 completed`)

	out = cli.ok(t, "pg:backups:url", "b001", "-a", "shop")
	must(t, "pg:backups:url", out, `^`+regexp.QuoteMeta(origin)+`/xfrtu/`+addon+`/[-0-9a-f]+\.dump\?X-Amz-Algorithm=AWS4-HMAC-SHA256&\S*X-Amz-Signature=[0-9a-f]{64}\S*\s*$`)

	got := filepath.Join(t.TempDir(), "b001.dump")
	cli.ok(t, "pg:backups:download", "b001", "-a", "shop", "-o", got)
	gotBytes, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("pg:backups:download wrote no file: %v", err)
	}
	want, _ := os.ReadFile(dump)
	if !bytes.HasPrefix(gotBytes, []byte("PGDMP")) || !bytes.Equal(gotBytes, want) {
		t.Fatalf("pg:backups:download wrote %d bytes starting %q; want the %d-byte pg_dump archive", len(gotBytes), gotBytes[:min(len(gotBytes), 16)], len(want))
	}

	out = cli.ok(t, "pg:backups:schedule", "DATABASE_URL", "--at", "02:00 America/Los_Angeles", "-a", "shop")
	must(t, "pg:backups:schedule", out, `Scheduling automatic daily backups of `+addonName+` at 02:00 America/Los_Angeles\.\.\. done`)
	out = cli.ok(t, "pg:backups:schedules", "-a", "shop")
	must(t, "pg:backups:schedules", out, `=== Backup Schedules`, `DATABASE_URL: daily at 2:00 America/Los_Angeles`)

	num, err := s.RunSchedule(addon)
	if err != nil || num != 2 {
		t.Fatalf("RunSchedule: %d, %v", num, err)
	}
	waitBackup(t, s, "shop", num)
	out = cli.ok(t, "pg:backups", "-a", "shop")
	must(t, "pg:backups after a scheduled run", out, `(?m)^\s*a002\s+.*Completed`, `(?m)^\s*b001\s+.*Completed`)
	out = cli.ok(t, "pg:backups:info", "a002", "-a", "shop")
	must(t, "pg:backups:info of a scheduled backup", out, `=== Backup a002`, `Type:\s+Scheduled`)

	out = cli.ok(t, "pg:backups:unschedule", "DATABASE_URL", "-a", "shop")
	must(t, "pg:backups:unschedule", out, `Unscheduling DATABASE_URL daily backups\.\.\. done`)
	out = cli.ok(t, "pg:backups:schedules", "-a", "shop")
	must(t, "pg:backups:schedules after unschedule", out, `No backup schedules found on shop`)

	// The restore replaces what changed since b001 with b001's rows.
	pg.Exec(t, db, "DELETE FROM orders WHERE id > 10; INSERT INTO orders (note) VALUES ('after the backup');")
	out = cli.ok(t, "pg:backups:restore", "b001", "DATABASE_URL", "-a", "shop", "--confirm", "shop")
	must(t, "pg:backups:restore", out, `Starting restore of b001 to `+addonName+`\.\.\. done`, `Restoring\.\.\. done`)
	if n, err := pg.Query(db, "SELECT count(*) FROM orders WHERE note <> 'after the backup'"); err != nil || n != "500" {
		t.Errorf("after pg:backups:restore b001 the table has %s of b001's 500 rows (%v)", n, err)
	}
	if n, err := pg.Query(db, "SELECT count(*) FROM orders WHERE note = 'after the backup'"); err != nil || n != "0" {
		t.Errorf("after pg:backups:restore b001 a row written after the backup is still there (%s, %v)", n, err)
	}
	out = cli.ok(t, "pg:backups", "-a", "shop")
	must(t, "pg:backups after a restore", out, `(?m)^\s*r003\s+.*Completed.*DATABASE\s*$`)

	out = cli.ok(t, "pg:backups:delete", "b001", "-a", "shop", "--confirm", "shop")
	must(t, "pg:backups:delete", out, `Deleting backup b001 on shop\.\.\. done`)
	out = cli.ok(t, "pg:backups", "-a", "shop")
	if strings.Contains(out, "b001") {
		t.Errorf("pg:backups still lists b001 after pg:backups:delete:\n%s", out)
	}
	must(t, "pg:backups after delete", out, `(?m)^\s*a002\s+`)
	if out, errOut, err := cli.run(t, "pg:backups:url", "b001", "-a", "shop"); err == nil {
		t.Errorf("pg:backups:url of a deleted backup succeeded: %s%s", out, errOut)
	}
}

// The real CLI reads every page of a list the simulator pages: `heroku domains` asks for
// `id ..; max=1000;` and sends back each Next-Range (src/lib/utils/paginator.ts). With pages
// of 100, an app's 250 custom domains and its herokuapp.com one all come.
func TestHerokuCLIListsEveryPage(t *testing.T) {
	testenv.HerokuCLI(t)
	s := New(Options{Token: token})
	for i := range 250 {
		s.AddDomain("many", fmt.Sprintf("www%03d.example.com", i))
	}
	s.SetPageLimit(100)
	origin, caFile := ServeTLS(t, s)
	cli := newHerokuCLI(t, origin, caFile)
	out, errOut, err := cli.run(t, "domains", "-a", "many", "--json")
	if err != nil {
		t.Fatalf("heroku domains: %v\n%s", err, errOut)
	}
	var domains []struct{ Hostname, Kind string }
	if err := json.Unmarshal([]byte(out), &domains); err != nil {
		t.Fatalf("heroku domains --json: %v", err)
	}
	seen := map[string]bool{}
	for _, d := range domains {
		seen[d.Hostname] = true
	}
	if len(domains) != 251 || len(seen) != 251 || !seen["www249.example.com"] || !seen["many.herokuapp.com"] {
		t.Errorf("heroku domains listed %d domains (%d distinct), want 251", len(domains), len(seen))
	}
	pages := 0
	for _, r := range s.Requests() {
		if r.Path == "/apps/many/domains" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("%d requests for the domains, want 3 pages of 100", pages)
	}
}
