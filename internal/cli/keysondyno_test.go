package cli

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// ARCHIVE_RECIPIENTS set to the public half of SFTP_PRIVATE_KEY (keys made by the real
// ssh-keygen): `pgoffsite check`, `backup` and `bundle` (the real binary) exit 2 naming both
// variables and the fix, before any request to Heroku and before any connection to the SFTP
// server, and print no key.
func TestRecipientWithItsKeyOnTheDynoRefused(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: apiKey})
	platform, data := herokusim.Serve(t, sim)
	sim.AddApp("shop")
	// The SFTP server's address: it counts connections, and there must be none.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialed atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	keygen := testenv.SSHKeygenBinary(t)
	for _, f := range []string{"id_ed25519", "host"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "pgoffsite@backups", "-f", filepath.Join(dir, f)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	private := read("id_ed25519")
	hostKey := strings.Fields(read("host.pub"))
	env := map[string]string{
		"HEROKU_API_KEY":      apiKey,
		"BACKUP_TARGETS":      "shop",
		"ARCHIVE_URL":         "sftp://backup@127.0.0.1:" + strconv.Itoa(port) + "/srv/pgoffsite",
		"SFTP_PRIVATE_KEY":    private,
		"SFTP_KNOWN_HOSTS":    "[127.0.0.1]:" + strconv.Itoa(port) + " " + hostKey[0] + " " + hostKey[1],
		"ARCHIVE_RECIPIENTS":  read("id_ed25519.pub"),
		"HEROKU_API_URL":      platform,
		"HEROKU_DATA_API_URL": data,
	}
	for _, args := range [][]string{{"check"}, {"backup"}, {"bundle"}} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, pgoffsiteBinary(t), args...)
			c.Env = binaryCommand(t, env, args...).Env // exactly env, with PATH and HOME
			b, _ := c.CombinedOutput()
			text := string(b)
			if code := c.ProcessState.ExitCode(); code != ExitUsage {
				t.Errorf("exit %d, want %d:\n%s", code, ExitUsage, text)
			}
			for _, want := range []string{"ARCHIVE_RECIPIENTS: the ssh-ed25519 recipient SHA256:", "is the public half of the private key in SFTP_PRIVATE_KEY",
				"age-keygen -o key.txt", "age-keygen -y key.txt"} {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
			for _, line := range strings.Split(private, "\n") {
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
					t.Errorf("a line of the private key is printed:\n%s", text)
				}
			}
			if n := len(sim.Requests()); n != 0 {
				t.Errorf("%d requests reached Heroku", n)
			}
			if n := dialed.Load(); n != 0 {
				t.Errorf("%d connections to the SFTP server", n)
			}
		})
	}
}
