package testenv

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PasswordRole creates a login role that must give its password (scram-sha-256) over TCP while
// every other role is still trusted, for tests of a wrong password, and returns the URL of db
// with that role and password. The role owns nothing: make it a database's owner to restore there.
func (p *Postgres) PasswordRole(t testing.TB, role, password, db string) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if exists, _ := p.Query("postgres", fmt.Sprintf(`SELECT 1 FROM pg_roles WHERE rolname = '%s'`, role)); exists != "1" {
		p.Exec(t, "postgres", fmt.Sprintf(`CREATE ROLE "%s" LOGIN PASSWORD '%s'`, role, strings.ReplaceAll(password, "'", "''")))
		hba, err := p.Query("postgres", "SHOW hba_file")
		if err != nil {
			t.Fatalf("testenv: %v: %s", err, hba)
		}
		old, err := os.ReadFile(hba)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		line := fmt.Sprintf("host all %s 127.0.0.1/32 scram-sha-256\n", role) // first match wins
		if err := os.WriteFile(hba, append([]byte(line), old...), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.Exec(t, "postgres", "SELECT pg_reload_conf()")
		// The reload is asynchronous: wait until a wrong password is refused.
		deadline := time.Now().Add(30 * time.Second)
		for {
			cmd := exec.Command(p.Bin("psql"), "-X", "-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", role, "-d", "postgres", "-c", "SELECT 1")
			cmd.Env = append(os.Environ(), "PGPASSWORD=not-"+password, "PGCONNECT_TIMEOUT=5")
			out, err := cmd.CombinedOutput()
			if err != nil && strings.Contains(string(out), "password authentication failed") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testenv: pg_hba.conf reload not in effect for %s: %s", role, out)
			}
			time.Sleep(50 * time.Millisecond) // a poll interval
		}
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}
