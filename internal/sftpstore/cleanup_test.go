package sftpstore

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// linkFaults break the link between the store and a real OpenSSH server behind Toxiproxy; each
// returns the function that heals it.
var linkFaults = map[string]func(t *testing.T, p *testenv.Proxy) (heal func()){
	// Every connection, open or new, is reset (RST) until the toxic goes.
	"reset_peer": func(t *testing.T, p *testenv.Proxy) func() {
		name := p.AddToxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0})
		return func() { p.RemoveToxic(t, name) }
	},
	// The link is down: open connections dropped, new ones refused.
	"link down": func(t *testing.T, p *testenv.Proxy) func() {
		p.SetEnabled(t, false)
		return func() { p.SetEnabled(t, true) }
	},
}

func viaToxiproxy(t *testing.T, srv *testenv.SSHD) (*testenv.Proxy, Options) {
	t.Helper()
	p := testenv.StartToxiproxy(t).Proxy(t, srv.Addr())
	_, port, _ := net.SplitHostPort(p.Listen)
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p, viaProxy(srv, n)
}

// breakMidFile starts a Put of a big object with ctx and breaks the link with fault once 14 MB
// were read from the source, while the upload is writing. It returns the temporary file on the
// server at that moment, the fault's heal function and the Put's result.
func breakMidFile(t *testing.T, ctx context.Context, s *Store, srv *testenv.SSHD, p *testenv.Proxy,
	fault func(*testing.T, *testenv.Proxy) func()) (tmp string, heal func(), result <-chan error) {
	t.Helper()
	reached, broken := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Put(ctx, store.Object{Key: "shop/b001.dump", Size: 1 << 30},
			&hookReader{r: endless{}, after: 14 << 20, hook: func() { close(reached); <-broken }})
	}()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("Put ended before the link broke: %v", err)
	}
	for _, f := range files(t, srv.Root) {
		if isTemp(filepath.Base(f)) {
			tmp = f
		}
	}
	heal = fault(t, p)
	close(broken)
	if tmp == "" {
		heal()
		t.Fatalf("no temporary file on the server while writing: %v", files(t, srv.Root))
	}
	return tmp, heal, done
}

// A connection reset mid-file, with the link down for a few seconds: the clean-up reconnects
// once the link is back and removes the temporary file.
func TestLinkBrokenMidFileTempRemovedAfterReconnect(t *testing.T) {
	for name, fault := range linkFaults {
		t.Run(name, func(t *testing.T) {
			srv := testenv.StartSSHD(t)
			p, o := viaToxiproxy(t, srv)
			o.DialTimeout = 5 * time.Second
			s := dial(t, o)
			tmp, heal, done := breakMidFile(t, context.Background(), s, srv, p, fault)
			time.Sleep(3 * time.Second)
			heal()
			var err error
			select {
			case err = <-done:
			case <-time.After(DefaultCleanupWindow + 30*time.Second):
				t.Fatal("Put did not return")
			}
			if err == nil {
				t.Fatal("Put succeeded across a broken link")
			}
			t.Logf("Put: %v", err)
			if strings.Contains(err.Error(), "left on the server") {
				t.Errorf("the error says a file is left: %v", err)
			}
			if f := files(t, srv.Root); len(f) > 0 {
				t.Errorf("after the failed Put the server holds %v (the temporary file was %s)", f, tmp)
			}
		})
	}
}

// A link that stays down past the clean-up window, or a SIGTERM while it is down: Put returns
// within its bound and names the temporary file it leaves, and when a backup run removes it.
func TestLinkDownPastCleanupNamesTheFileLeft(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		cancel bool
		bound  time.Duration // after the link broke
	}{
		{"window over", 4 * time.Second, false, 4*time.Second + 10*time.Second},
		{"cancelled while the link is down", DefaultCleanupWindow, true, cancelGrace + cleanupTimeout + 10*time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := testenv.StartSSHD(t)
			p, o := viaToxiproxy(t, srv)
			o.DialTimeout = 2 * time.Second
			s := dial(t, o)
			s.cleanupWindow = c.window
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tmp, heal, done := breakMidFile(t, ctx, s, srv, p, linkFaults["link down"])
			defer heal()
			start := time.Now()
			if c.cancel {
				time.Sleep(time.Second) // the clean-up is retrying
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(c.bound + time.Minute):
				t.Fatal("Put did not return")
			}
			took := time.Since(start)
			if err == nil {
				t.Fatal("Put succeeded with the link down")
			}
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if took > c.bound {
				t.Errorf("Put returned %s after the link broke, past its bound of %s", took, c.bound)
			}
			msg := err.Error()
			for _, want := range []string{
				filepath.Join(srv.Root, tmp), "is left on the server of " + s.Location(""),
				"the first run of `pgoffsite backup` that starts an hour or more from now removes it",
				"remove it by hand",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q", want)
				}
			}
			if strings.Contains(msg, "RemoveStale") {
				t.Errorf("the error names an internal function: %v", err)
			}
		})
	}
}

func TestUnitWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "an hour", 2 * time.Hour: "2 hours", time.Minute: "a minute", 90 * time.Second: "90 seconds",
		time.Second: "a second", 1500 * time.Millisecond: "1.5s",
	} {
		if got := words(d); got != want {
			t.Errorf("words(%s) = %q, want %q", d, got, want)
		}
	}
}

// The server refuses to remove the temporary file (its directory was made read-only during the
// upload): the error names the file, the directory and the fix, and says that runs of
// pgoffsite backup try again.
func TestCleanupRefusedNamesTheFile(t *testing.T) {
	srv := testenv.StartSSHDAs(t, "nobody")
	s := dial(t, options(srv))
	dir := filepath.Join(srv.Root, "shop")
	boom := errors.New("download broke")
	r := &hookReader{r: &failingReader{io.LimitReader(endless{}, 4<<20), boom}, after: 1 << 20, hook: func() {
		os.Chmod(dir, 0o555) // as root, on the server's side
	}}
	err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: 8 << 20}, r)
	os.Chmod(dir, 0o755)
	if !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the source's error", err)
	}
	t.Logf("error: %v", err)
	left := files(t, srv.Root)
	if len(left) != 1 || !isTemp(filepath.Base(left[0])) {
		t.Fatalf("the server holds %v, want the temporary file", left)
	}
	for _, want := range []string{
		"the temporary file " + filepath.Join(srv.Root, left[0]) + " is left on the server of " + s.Location(""),
		"the server refused its removal", "the SFTP user nobody may not create or remove files in " + dir + " (dr-xr-xr-x",
		"remove it by hand", "runs of `pgoffsite backup` try again once it has gone an hour without a write",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}

// A stale temporary file the server will not let the user remove: RemoveStale's error names
// it, the directory that refuses and the fix, in place of the function's own name.
func TestRemoveStaleRefused(t *testing.T) {
	srv := testenv.StartSSHDAs(t, "nobody")
	s := dial(t, options(srv))
	dir := filepath.Join(srv.Root, "shop")
	stale := filepath.Join(dir, ".b001.dump.tmp-0011223344556677")
	if err := os.Mkdir(dir, 0o755); err != nil { // root's, as the test runs
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-staleAfter - time.Minute)
	os.Chtimes(stale, old, old)
	removed, err := s.RemoveStale(context.Background())
	if err == nil || len(removed) != 0 {
		t.Fatalf("RemoveStale = %v, %v; want a refusal", removed, err)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{
		"remove the temporary files interrupted runs left in " + s.Location(""), "remove " + stale + ": permission denied",
		"the SFTP user nobody may not create or remove files in " + dir, "remove what is left by hand",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(err.Error(), "RemoveStale") || strings.Contains(err.Error(), "stale") {
		t.Errorf("the error speaks of the code, not of the files: %v", err)
	}
}
