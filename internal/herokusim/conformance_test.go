package herokusim

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sharedDir is ../shared beside the repository, or $PGOFFSITE_SHARED.
func sharedDir(t *testing.T) string {
	if d := os.Getenv("PGOFFSITE_SHARED"); d != "" {
		return d
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared")
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = filepath.Dir(dir)
	}
}

// TestConformance runs the shared conformance tool against the simulator, with the database
// billed to another app than the one it is attached to, so that the billing-app rule is checked.
func TestConformance(t *testing.T) {
	tool := filepath.Join(sharedDir(t), "tools", "herokusim-conformance")
	if _, err := os.Stat(tool); err != nil {
		if testenv.InCI() {
			t.Fatalf("conformance tool missing at %s", tool)
		}
		t.Skipf("conformance tool missing at %s", tool)
	}
	pg := testenv.StartPostgres(t)
	name, dsn := pg.CreateDB(t, "conformance")
	pg.Exec(t, name, "CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 1000) g;")
	s := New(Options{Token: "conformance-token-123456", PgDump: pg.Bin("pg_dump")})
	s.AddApp("shop-core")
	s.AddApp("shop-web")
	addon := s.AddDatabase("shop-core", "DATABASE", "heroku-postgresql:standard-0", dsn)
	s.Attach(addon, "shop-web", "DATABASE", nil)
	platform, data := Serve(t, s)

	cmd := exec.Command("python3", tool, "--platform", platform, "--data", data, "--token", "conformance-token-123456", "--app", "shop-web")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log(sc.Text())
		last = sc.Text()
	}
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(last, "30 passed, 0 failed") {
		t.Fatalf("conformance: %v, last line %q", err, last)
	}
}
