package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The real Heroku CLI works against the command started with --tls --ca-file, pointed at its
// platform origin and nothing else: a schedule set with the CLI, run with the knob, shows as
// a001 in pg:backups and downloads as a pg_dump archive. (internal/herokusim's TestHerokuCLI
// drives every pg:backups command.)
func TestHerokuCLIAgainstTheCommand(t *testing.T) {
	bin := testenv.HerokuCLI(t)
	pg := testenv.StartPostgres(t)
	name, dsn := pg.CreateDB(t, "cmdcli")
	pg.Exec(t, name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	platform, _, _, _ := start(t, "--token", key, "--app", "shop", "--database-url", dsn,
		"--pg-dump", pg.Bin("pg_dump"), "--dump-dir", t.TempDir(), "--tls", "--ca-file", caFile)
	env := testenv.HerokuCLIEnv(t, platform, caFile, key)
	work := t.TempDir()
	heroku := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Dir = env, work
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("heroku %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}

	if out := heroku("pg:backups:schedule", "--at", "04:00 UTC", "-a", "shop"); !strings.Contains(out, "at 04:00 UTC... done") {
		t.Fatalf("pg:backups:schedule: %s", out)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	if code, body := doWith(t, &http.Client{Transport: tr, Timeout: time.Minute}, "POST", platform+"/herokusim/run-schedule", key, nil); code != 201 {
		t.Fatalf("run-schedule: %d %s", code, body)
	}
	done := regexp.MustCompile(`(?m)^\s*a001\s+.*Completed`)
	deadline := time.Now().Add(time.Minute)
	for out := heroku("pg:backups", "-a", "shop"); !done.MatchString(out); out = heroku("pg:backups", "-a", "shop") {
		if time.Now().After(deadline) {
			t.Fatalf("pg:backups does not show a001 completed within a minute:\n%s", out)
		}
	}
	got := filepath.Join(work, "a001.dump")
	heroku("pg:backups:download", "a001", "-a", "shop", "-o", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.HasPrefix(b, []byte("PGDMP")) {
		t.Fatalf("pg:backups:download wrote %d bytes (%v), not a pg_dump archive", len(b), err)
	}
}
