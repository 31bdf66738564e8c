package dumpsource

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// scramServer starts a PostgreSQL server of its own that asks for passwords (the shared test
// server trusts every local connection), with user postgres's password set to pass.
func scramServer(t *testing.T, pass string) (port int) {
	t.Helper()
	bin := testenv.StartPostgres(t).BinDir
	dir, err := os.MkdirTemp("/tmp", "pgoffsite-scram-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	asOwner := func(args ...string) *exec.Cmd {
		if os.Geteuid() != 0 {
			return exec.Command(args[0], args[1:]...)
		}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		return exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(pass+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "-R", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asOwner(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwfile, "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port = testenv.FreePort(t)
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	if out, err := asOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = asOwner(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run() })
	return port
}

// A wrong password fails the target with the server's words, naming the target, and the
// password tried appears nowhere; the right one dumps.
func TestWrongPassword(t *testing.T) {
	port := scramServer(t, "right-pa55word")
	wrong := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres", password, port)
	j, mem, logs := newJob(t, envSource(wrong))
	res := j.Archive(context.Background(), envTarget)
	if res.Err == nil || !strings.Contains(res.Err.Error(), `password authentication failed for user "postgres"`) || !strings.Contains(res.Err.Error(), "env:SHOP_DATABASE_URL") {
		t.Fatalf("err = %v", res.Err)
	}
	if strings.Contains(res.Err.Error()+logs.String(), password) || len(mem.objects) != 0 {
		t.Errorf("password shown or objects stored: %v", res.Err)
	}
	right := fmt.Sprintf("postgres://postgres:right-pa55word@127.0.0.1:%d/postgres", port)
	j, _, logs = newJob(t, envSource(right))
	if res := j.Archive(context.Background(), envTarget); res.Err != nil || strings.Contains(logs.String(), "right-pa55word") {
		t.Fatalf("err = %v", res.Err)
	}
}
