package sftpstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The helper process is a run uploading to the SFTP server: it writes part of an object, says
// "writing" on stdout, and waits for more bytes on stdin that never come, until it is killed.
const helperEnv = "SFTPSTORE_TEST_UPLOADER"

func TestMain(m *testing.M) {
	if o := os.Getenv(helperEnv); o != "" {
		uploader(o)
		return
	}
	testenv.Main(m)
}

func uploader(config string) {
	var o Options
	if err := json.Unmarshal([]byte(config), &o); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	s, err := Dial(context.Background(), o)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	r := io.MultiReader(io.LimitReader(endless{}, 1<<20), announce{}, os.Stdin)
	err = s.Put(context.Background(), store.Object{Key: "shop/b001.dump", Size: 1 << 30}, r)
	fmt.Fprintf(os.Stderr, "put returned: %v", err)
	os.Exit(4)
}

// announce prints "writing" once the first bytes went to the upload, then ends.
type announce struct{}

func (announce) Read([]byte) (int, error) {
	os.Stdout.WriteString("writing\n")
	return 0, io.EOF
}

func TestKilledRunLeavesTempThatRemoveStaleTakes(t *testing.T) {
	srv := testenv.StartSSHD(t)
	config, _ := json.Marshal(options(srv))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(config))
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "writing\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("uploader said %q, %v: %s", line, err, stderr.String())
	}
	// Wait until the first bytes are in the temporary file, then kill the run as SIGKILL does.
	var tmp string
	deadline := time.Now().Add(10 * time.Second)
	for tmp == "" && time.Now().Before(deadline) {
		for _, f := range files(t, srv.Root) {
			if fi, err := os.Stat(filepath.Join(srv.Root, f)); err == nil && fi.Size() > 0 && isTemp(filepath.Base(f)) {
				tmp = f
			}
		}
		if tmp == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if tmp == "" {
		t.Fatalf("no temporary file with data appeared: %v", files(t, srv.Root))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	s := dial(t, options(srv))
	removed, err := s.RemoveStale(context.Background())
	if err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale took a fresh file: %v, %v", removed, err)
	}
	// An hour later it is stale.
	old := time.Now().Add(-staleAfter - time.Minute)
	os.Chtimes(filepath.Join(srv.Root, tmp), old, old)
	removed, err = s.RemoveStale(context.Background())
	if err != nil || len(removed) != 1 || removed[0] != srv.Root+"/"+tmp {
		t.Fatalf("RemoveStale = %v, %v; want [%s]", removed, err, srv.Root+"/"+tmp)
	}
	wantNoFiles(t, srv.Root)
}

func options(srv *testenv.SSHD) Options {
	return Options{User: srv.User, Host: srv.Host, Port: srv.Port, Dir: srv.Root,
		PrivateKey: srv.PrivateKey, KnownHosts: srv.KnownHosts}
}

func dial(t *testing.T, o Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Dial(ctx, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func data(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// files returns every regular file under root, relative, slash separated.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantNoFiles(t *testing.T, root string) {
	t.Helper()
	if f := files(t, root); len(f) > 0 {
		t.Errorf("files left on the server: %v", f)
	}
}

// onlyReader hides the source's type, as a pipe from the download does.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestPutRoundTrip(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	ctx := context.Background()
	if !s.cur.fsync {
		t.Error("OpenSSH's fsync@openssh.com was not found: archives would not be flushed to disk")
	}
	cases := []struct {
		key  string
		body []byte
		size int64
	}{
		{"shop/DATABASE_URL/b001.dump", data(3<<20+17, 1), 3<<20 + 17},
		{"shop/DATABASE_URL/b002.dump", data(3<<20+5, 2), store.UnknownSize},
		{"shop/DATABASE_URL/empty.dump", nil, 0},
		{"shop/DATABASE_URL/empty-unknown.dump", nil, store.UnknownSize},
		{"top.json", []byte(`{"a":1}`), 7},
	}
	for _, c := range cases {
		if err := s.Put(ctx, store.Object{Key: c.key, Size: c.size}, onlyReader{bytes.NewReader(c.body)}); err != nil {
			t.Fatalf("Put %s: %v", c.key, err)
		}
		local := filepath.Join(srv.Root, filepath.FromSlash(c.key))
		got, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.body) {
			t.Errorf("%s: server holds %d bytes that differ from the %d sent", c.key, len(got), len(c.body))
		}
		if fi, _ := os.Stat(local); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", c.key, fi.Mode().Perm())
		}
		rc, size, err := s.Open(ctx, c.key)
		if err != nil {
			t.Fatalf("Open %s: %v", c.key, err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || size != int64(len(c.body)) || !bytes.Equal(back, c.body) {
			t.Errorf("Open %s: %d bytes (size %d), equal %v, err %v", c.key, len(back), size, bytes.Equal(back, c.body), err)
		}
	}
	if got := files(t, srv.Root); len(got) != len(cases) {
		t.Errorf("server holds %v, want exactly the %d objects", got, len(cases))
	}
	l, err := s.List(ctx, "shop/")
	if err != nil {
		t.Fatal(err)
	}
	if keys, want := l.Keys(), "shop/DATABASE_URL/b001.dump shop/DATABASE_URL/b002.dump shop/DATABASE_URL/empty-unknown.dump shop/DATABASE_URL/empty.dump"; strings.Join(keys, " ") != want {
		t.Errorf("List = %v, want %s", keys, want)
	}
	if _, _, err := s.Open(ctx, "shop/nope.dump"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing key: %v, want fs.ErrNotExist", err)
	}
	if loc, want := s.Location("a/b.dump"), fmt.Sprintf("sftp://%s@127.0.0.1:%d%s/a/b.dump", srv.User, srv.Port, srv.Root); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
}

// countReader counts what the store read, and whether it reached io.EOF.
type countReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func TestPutNeverReplaces(t *testing.T) {
	srv := testenv.StartSSHD(t)
	proxy := startFreezer(t, srv.Addr())
	s := dial(t, viaProxy(srv, proxy.port()))
	ctx := context.Background()
	key := "shop/DATABASE_URL/b001.dump"
	first := data(1<<20, 3)
	if err := s.Put(ctx, store.Object{Key: key, Size: int64(len(first))}, bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{2 << 20, store.UnknownSize} {
		src := &countReader{r: bytes.NewReader(data(2<<20, 4))}
		before := proxy.sent.Load()
		err := s.Put(ctx, store.Object{Key: key, Size: size}, src)
		// The archive is there: it is not sent again.
		if sent := proxy.sent.Load() - before; sent > 64<<10 {
			t.Errorf("size %d: %d bytes went to the server for an object it already has", size, sent)
		}
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("second Put (size %d): %v, want ErrExists", size, err)
		}
		// Read to the end as if written, so the caller still has the stream's size and hash.
		if !src.eof || src.n != 2<<20 {
			t.Errorf("size %d: read %d bytes, eof %v; want the whole stream", size, src.n, src.eof)
		}
	}
	got, _ := os.ReadFile(filepath.Join(srv.Root, filepath.FromSlash(key)))
	if !bytes.Equal(got, first) {
		t.Error("the existing object was replaced")
	}
	if f := files(t, srv.Root); len(f) != 1 {
		t.Errorf("files on the server: %v", f)
	}
}

// racingReader creates the final file on the server once the upload has read everything: an
// earlier run of the same backup finishing while this one uploads.
type racingReader struct {
	r    io.Reader
	path string
	done bool
}

func (r *racingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF && !r.done {
		r.done = true
		if werr := os.WriteFile(r.path, []byte("the other run"), 0o600); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func TestPutLosesRaceWithoutReplacing(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	key := "shop/b001.dump"
	final := filepath.Join(srv.Root, "shop", "b001.dump")
	for _, size := range []int64{1 << 20, store.UnknownSize} {
		os.Remove(final)
		err := s.Put(context.Background(), store.Object{Key: key, Size: size}, &racingReader{r: bytes.NewReader(data(1<<20, 5)), path: final})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("size %d: Put = %v, want ErrExists", size, err)
		}
		if got, _ := os.ReadFile(final); string(got) != "the other run" {
			t.Errorf("size %d: the other run's file was replaced (%d bytes)", size, len(got))
		}
		if f := files(t, srv.Root); len(f) != 1 {
			t.Errorf("size %d: files on the server: %v", size, f)
		}
	}
}

// TestServerRenameRefusesExisting pins the server behaviour Put relies on: OpenSSH's plain
// SSH_FXP_RENAME fails when the new name exists, and leaves both files as they were.
func TestServerRenameRefusesExisting(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	os.WriteFile(filepath.Join(srv.Root, "old"), []byte("old"), 0o600)
	os.WriteFile(filepath.Join(srv.Root, "new"), []byte("new"), 0o600)
	c, _, err := s.conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sftp.Rename(srv.Root+"/new", srv.Root+"/old"); err == nil {
		t.Fatal("rename onto an existing file succeeded")
	}
	for name, want := range map[string]string{"old": "old", "new": "new"} {
		if got, _ := os.ReadFile(filepath.Join(srv.Root, name)); string(got) != want {
			t.Errorf("%s holds %q after the refused rename", name, got)
		}
	}
	// And the rename Put uses works where the name is free.
	if err := c.sftp.Rename(srv.Root+"/new", srv.Root+"/free"); err != nil {
		t.Errorf("rename to a free name: %v", err)
	}
}

// failingReader yields n bytes, then fails.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// hookReader calls hook once after `after` bytes, then goes on yielding (forever if r does).
type hookReader struct {
	r     io.Reader
	after int64
	n     int64
	hook  func()
	once  sync.Once
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n >= h.after {
		h.once.Do(h.hook)
	}
	return n, err
}

// endless yields bytes forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestFailedPutLeavesNothing(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	body := data(2<<20, 6)
	boom := errors.New("download broke")
	cases := []struct {
		name string
		size int64
		r    func(cancel func()) io.Reader
		want error
	}{
		{"short", int64(len(body)) + 1, func(func()) io.Reader { return bytes.NewReader(body) }, store.ErrSizeMismatch},
		{"long", int64(len(body)) - 1, func(func()) io.Reader { return bytes.NewReader(body) }, store.ErrSizeMismatch},
		{"reader error", int64(len(body)), func(func()) io.Reader { return &failingReader{bytes.NewReader(body[:1<<20]), boom} }, boom},
		{"reader error, unknown size", store.UnknownSize, func(func()) io.Reader { return &failingReader{bytes.NewReader(body), boom} }, boom},
		{"cancelled", 1 << 30, func(cancel func()) io.Reader { return &hookReader{r: endless{}, after: 1 << 20, hook: cancel} }, context.Canceled},
		{"cancelled, unknown size", store.UnknownSize, func(cancel func()) io.Reader { return &hookReader{r: endless{}, after: 1 << 20, hook: cancel} }, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			err := s.Put(ctx, store.Object{Key: "shop/b.dump", Size: c.size}, c.r(cancel))
			if !errors.Is(err, c.want) {
				t.Fatalf("Put = %v, want %v", err, c.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Put took %s", d)
			}
			wantNoFiles(t, srv.Root)
		})
	}
	// The connection is still good after all that.
	if err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: 3}, strings.NewReader("abc")); err != nil {
		t.Fatalf("Put after the failures: %v", err)
	}
}

func TestPutRejectsBadKeys(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	for _, key := range []string{"", "/abs", "../up", "a/../../b", "a//b", "a/./b", "a/"} {
		if err := s.Put(context.Background(), store.Object{Key: key, Size: 1}, strings.NewReader("x")); err == nil {
			t.Errorf("Put accepted key %q", key)
		}
	}
	if err := s.Put(context.Background(), store.Object{Key: "a", Size: -2}, strings.NewReader("x")); err == nil {
		t.Error("Put accepted size -2")
	}
	wantNoFiles(t, srv.Root)
}

func TestWrongHostKeyRefusedBeforeWriting(t *testing.T) {
	srv := testenv.StartSSHD(t)
	o := options(srv)
	o.KnownHosts = srv.OtherKnownHosts(t)
	_, err := Dial(context.Background(), o)
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial = %v, want ErrHostKey", err)
	}
	_, _, key, _, _, perr := ssh.ParseKnownHosts([]byte(srv.KnownHosts))
	if perr != nil {
		t.Fatal(perr)
	}
	for _, want := range []string{fmt.Sprintf("[127.0.0.1]:%d", srv.Port), ssh.FingerprintSHA256(key)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// A known_hosts with the wrong key first and the right one after still connects: both are
	// pinned for the host, as in OpenSSH.
	o.KnownHosts = srv.OtherKnownHosts(t) + "\n" + srv.KnownHosts
	dial(t, o)
	wantNoFiles(t, srv.Root)
}

// known_hosts lines as ssh-keyscan -H and ssh's HashKnownHosts write them, with comments and
// keys of other hosts around, pin the key too.
func TestHashedKnownHosts(t *testing.T) {
	srv := testenv.StartSSHD(t)
	o := options(srv)
	_, _, key, _, _, _ := ssh.ParseKnownHosts([]byte(srv.KnownHosts))
	hashed := knownhosts.HashHostname(fmt.Sprintf("[127.0.0.1]:%d", srv.Port)) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	o.KnownHosts = "# backup server\n\nother.example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n" + hashed + "\n"
	dial(t, o)
}

func TestUnitHostKeyAlgorithms(t *testing.T) {
	p, err := pinnedHostKeys("h.example.com "+testRSAKey+"\nh.example.com "+testEd25519Key, "h.example.com:22", "h.example.com", 22)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.algos, " "); got != "rsa-sha2-512 rsa-sha2-256 ssh-rsa ssh-ed25519" {
		t.Errorf("host key algorithms %s", got)
	}
	// A line for port 22 does not pin another port.
	if _, err := pinnedHostKeys("h.example.com "+testEd25519Key, "h.example.com:2222", "h.example.com", 2222); err == nil || !strings.Contains(err.Error(), "no key for [h.example.com]:2222") {
		t.Errorf("port 2222 with a key for port 22: %v", err)
	}
}

func TestNoKnownHostsEntry(t *testing.T) {
	// A listener that would count connections: none may be made.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	priv := testKey(t)
	for _, kh := range []string{"", "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHLuYlBdtGH4YDOk3jDZxKVOTDWPfj+lNMRBzbQEJI7d"} {
		_, err := Dial(context.Background(), Options{User: "u", Host: "127.0.0.1", Port: port, Dir: "/x", PrivateKey: priv, KnownHosts: kh})
		if err == nil {
			t.Fatal("Dial without a pinned key succeeded")
		}
		for _, want := range []string{"SFTP_KNOWN_HOSTS", fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1", port)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if kh != "" && !strings.Contains(err.Error(), fmt.Sprintf("no key for [127.0.0.1]:%d", port)) {
			t.Errorf("error %q does not say which host has no key", err)
		}
	}
	if _, err := Dial(context.Background(), Options{User: "u", Host: "127.0.0.1", Port: port, Dir: "/x", PrivateKey: priv, KnownHosts: "not a known_hosts line"}); err == nil || !strings.Contains(err.Error(), "SFTP_KNOWN_HOSTS") {
		t.Errorf("garbage known_hosts: %v", err)
	}
	good := Options{User: "u", Host: "127.0.0.1", Port: port, Dir: "/x", PrivateKey: priv,
		KnownHosts: fmt.Sprintf("[127.0.0.1]:%d %s", port, testEd25519Key)}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate of good options: %v", err)
	}
	bad := good
	bad.KnownHosts = "[127.0.0.1]:1 " + testEd25519Key
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "SFTP_KNOWN_HOSTS has no key") {
		t.Errorf("Validate without a pinned key: %v", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections made before the host key was known", n)
	}
}

func testKey(t *testing.T) string {
	t.Helper()
	srv := testenv.StartSSHD(t)
	srv.Stop()
	return srv.PrivateKey
}

func TestBadOptions(t *testing.T) {
	srv := testenv.StartSSHD(t)
	good := options(srv)
	secret := strings.Split(strings.TrimSpace(good.PrivateKey), "\n")[2]
	cases := map[string]func(*Options){
		"garbage key": func(o *Options) {
			o.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secret + "\n-----END OPENSSH PRIVATE KEY-----\n"
		},
		"truncated key": func(o *Options) { o.PrivateKey = o.PrivateKey[:len(o.PrivateKey)/2] },
		"no key":        func(o *Options) { o.PrivateKey = "" },
		"relative dir":  func(o *Options) { o.Dir = "backups" },
		"no user":       func(o *Options) { o.User = "" },
		"bad port":      func(o *Options) { o.Port = 70000 },
	}
	for name, mod := range cases {
		o := good
		mod(&o)
		_, err := Dial(context.Background(), o)
		if err == nil {
			t.Errorf("%s: Dial succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	// Another key than the authorised one: refused by the server, said so.
	o := good
	o.PrivateKey = testKey(t)
	if _, err := Dial(context.Background(), o); err == nil || !strings.Contains(err.Error(), "refused the private key") {
		t.Errorf("unauthorised key: %v", err)
	}
}

func TestServerStoppedMidUpload(t *testing.T) {
	srv := testenv.StartSSHD(t)
	o := options(srv)
	o.StallTimeout = 5 * time.Second
	o.DialTimeout = 2 * time.Second
	s := dial(t, o)
	// The clean-up tries to reconnect for its window, then gives up: the server stays gone.
	s.cleanupWindow = 3 * time.Second
	start := time.Now()
	err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: 1 << 30},
		&hookReader{r: endless{}, after: 4 << 20, hook: srv.Stop})
	if err == nil {
		t.Fatal("Put succeeded with the server gone")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Put took %s to fail", d)
	}
	t.Logf("error: %v", err)
	for _, f := range files(t, srv.Root) {
		if !isTemp(filepath.Base(f)) {
			t.Errorf("a final file is on the server: %s", f)
		} else if !strings.Contains(err.Error(), path.Join(srv.Root, f)+" is left on the server") {
			t.Errorf("the error does not name the temporary file %s it leaves", f)
		}
	}
}

// freezer is a TCP proxy that can stop moving bytes on its open connections while keeping them
// open (a server hung, a link black-holed), or cut them; new connections go through.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*frozenConn
	done   chan struct{}
	sent   atomic.Int64 // bytes from clients to the server
}

type frozenConn struct {
	a, b   net.Conn
	frozen chan struct{}
	once   sync.Once
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, done: make(chan struct{})}
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.cut()
	})
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			c := &frozenConn{a: a, b: b, frozen: make(chan struct{})}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.pipe(c, b, a, &f.sent)
			go f.pipe(c, a, b, new(atomic.Int64))
		}
	}()
	return f
}

func (f *freezer) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *freezer) pipe(c *frozenConn, dst, src net.Conn, count *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-c.frozen:
			<-f.done // hold the bytes, read nothing more: the peer's writes back up
			return
		default:
		}
		if n > 0 {
			count.Add(int64(n))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// freeze stops every open connection; they stay open.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.once.Do(func() { close(c.frozen) })
	}
	f.conns = nil
}

// cut closes every open connection.
func (f *freezer) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.a.Close()
		c.b.Close()
	}
	f.conns = nil
}

func viaProxy(srv *testenv.SSHD, port int) Options {
	o := options(srv)
	o.Port = port
	// The proxy is another address: pin the server's key there.
	_, _, key, _, _, _ := ssh.ParseKnownHosts([]byte(srv.KnownHosts))
	o.KnownHosts = fmt.Sprintf("[127.0.0.1]:%d %s", port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
	return o
}

func TestStalledServerFailsWithinStallTimeout(t *testing.T) {
	stallers := map[string]func(t *testing.T, srv *testenv.SSHD) (Options, func()){
		// The link goes silent: a proxy that stops moving bytes and keeps the connection open.
		"black-holed link": func(t *testing.T, srv *testenv.SSHD) (Options, func()) {
			f := startFreezer(t, srv.Addr())
			return viaProxy(srv, f.port()), f.freeze
		},
		// The server hangs: the real sshd's session processes stopped with SIGSTOP.
		"sshd stopped": func(t *testing.T, srv *testenv.SSHD) (Options, func()) {
			return options(srv), func() { t.Cleanup(srv.FreezeSessions()) }
		},
	}
	for name, staller := range stallers {
		t.Run(name, func(t *testing.T) {
			srv := testenv.StartSSHD(t)
			o, stall := staller(t, srv)
			o.StallTimeout = time.Second
			o.DialTimeout = 3 * time.Second
			s := dial(t, o)
			for _, size := range []int64{1 << 30, store.UnknownSize} {
				start := time.Now()
				err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: size},
					&hookReader{r: endless{}, after: 2 << 20, hook: stall})
				if !errors.Is(err, ErrStalled) {
					t.Fatalf("size %d: Put = %v, want ErrStalled", size, err)
				}
				// The stall, then the cleanup on a new connection.
				if d := time.Since(start); d > o.StallTimeout+cleanupTimeout {
					t.Errorf("size %d: Put took %s to fail", size, d)
				}
				t.Logf("size %d: failed after %s: %v", size, time.Since(start).Round(time.Millisecond), err)
				// The temporary file was removed over a new connection.
				wantNoFiles(t, srv.Root)
			}
		})
	}
}

// SIGTERM while the server hangs: the cancelled Put may not wait for the stall timeout, and
// still removes its temporary file, over a new connection.
func TestCancelWhileServerHangs(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv)) // the default 30s stall timeout: the cancellation must not wait for it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err := s.Put(ctx, store.Object{Key: "shop/b.dump", Size: store.UnknownSize},
		&hookReader{r: endless{}, after: 2 << 20, hook: func() { t.Cleanup(srv.FreezeSessions()); cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > cancelGrace+cleanupTimeout+time.Second {
		t.Errorf("the cancelled Put took %s", d)
	}
	wantNoFiles(t, srv.Root)
}

func TestStalledReadFailsWithinStallTimeout(t *testing.T) {
	srv := testenv.StartSSHD(t)
	f := startFreezer(t, srv.Addr())
	o := viaProxy(srv, f.port())
	o.StallTimeout = time.Second
	s := dial(t, o)
	ctx := context.Background()
	body := data(16<<20, 7)
	if err := s.Put(ctx, store.Object{Key: "b.dump", Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Open(ctx, "b.dump")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	f.freeze()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("reading from a stalled server: %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 3*o.StallTimeout {
		t.Errorf("the read took %s to fail", d)
	}
}

func TestDialToSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	srv := testenv.StartSSHD(t)
	o := viaProxy(srv, ln.Addr().(*net.TCPAddr).Port)
	o.DialTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), o)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %s with a 500ms timeout", d)
	}
}

func TestReconnectsAfterLostConnection(t *testing.T) {
	srv := testenv.StartSSHD(t)
	f := startFreezer(t, srv.Addr())
	o := viaProxy(srv, f.port())
	s := dial(t, o)
	ctx := context.Background()
	if err := s.Put(ctx, store.Object{Key: "a", Size: 1}, strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	f.cut()
	if err := s.Put(ctx, store.Object{Key: "b", Size: 1}, strings.NewReader("b")); err != nil {
		t.Fatalf("Put after the connection was lost: %v", err)
	}
	f.cut()
	if _, err := s.List(ctx, ""); err != nil {
		t.Fatalf("List after the connection was lost: %v", err)
	}
	if got := strings.Join(files(t, srv.Root), " "); got != "a b" {
		t.Errorf("server holds %s", got)
	}
}

func TestRemoveStale(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	old := time.Now().Add(-2 * time.Hour)
	mk := func(rel string, at time.Time) {
		p := filepath.Join(srv.Root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("x"), 0o600)
		os.Chtimes(p, at, at)
	}
	mk("shop/DATABASE_URL/.b001.dump.tmp-0011223344556677", old)
	mk(".top.json.tmp-aa", old)
	mk("shop/DATABASE_URL/.b002.dump.tmp-8899aabbccddeeff", time.Now()) // an upload still running
	mk("shop/DATABASE_URL/b000.dump", old)
	mk("shop/.hidden", old)
	removed, err := s.RemoveStale(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := srv.Root + "/.top.json.tmp-aa " + srv.Root + "/shop/DATABASE_URL/.b001.dump.tmp-0011223344556677"
	if got := strings.Join(removed, " "); got != want {
		t.Errorf("removed %s, want %s", got, want)
	}
	if got := strings.Join(files(t, srv.Root), " "); got != "shop/.hidden shop/DATABASE_URL/.b002.dump.tmp-8899aabbccddeeff shop/DATABASE_URL/b000.dump" {
		t.Errorf("left %s", got)
	}
	// Temporary files are not archives.
	l, _ := s.List(context.Background(), "")
	if keys := l.Keys(); strings.Join(keys, " ") != "shop/DATABASE_URL/b000.dump" {
		t.Errorf("List = %v", keys)
	}
}

// When the connection ends with the rename's answer on its way, published tells from the files
// whether the rename happened.
func TestPublishedAfterLostRenameAnswer(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	tmp, final := srv.Root+"/.b.dump.tmp-01", srv.Root+"/b.dump"
	os.WriteFile(filepath.Join(srv.Root, "b.dump"), []byte("12345"), 0o600)
	for _, c := range []struct {
		tmpThere bool
		size     int64
		want     bool
	}{
		{false, 5, true},  // renamed
		{true, 5, false},  // not renamed: the final file is another run's
		{false, 4, false}, // tmp gone, but the final file is not what was sent
	} {
		os.Remove(filepath.Join(srv.Root, ".b.dump.tmp-01"))
		if c.tmpThere {
			os.WriteFile(filepath.Join(srv.Root, ".b.dump.tmp-01"), []byte("12345"), 0o600)
		}
		conn, _, err := s.conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, err := published(conn, tmp, final, c.size)
		if err != nil || got != c.want {
			t.Errorf("tmp there %v, size %d: published = %v, %v; want %v", c.tmpThere, c.size, got, err, c.want)
		}
	}
}

func TestUnitLocationAndKeys(t *testing.T) {
	s := &Store{o: Options{User: "backup", Host: "vps.example.com", Port: 22, Dir: "/srv/pg"}, addr: "vps.example.com:22"}
	if got := s.Location("shop/b.dump"); got != "sftp://backup@vps.example.com/srv/pg/shop/b.dump" {
		t.Errorf("Location = %s", got)
	}
	s = &Store{o: Options{User: "backup", Host: "::1", Port: 2222, Dir: "/"}, addr: "[::1]:2222"}
	if got := s.Location("b.dump"); got != "sftp://backup@[::1]:2222/b.dump" {
		t.Errorf("Location = %s", got)
	}
	for key, ok := range map[string]bool{"a": true, "a/b.dump": true, ".a": true, "": false, "/a": false, "a/..": false, "..": false, "a\\b": false} {
		if validKey(key) != ok {
			t.Errorf("validKey(%q) = %v", key, !ok)
		}
	}
	for name, ok := range map[string]bool{".b.dump.tmp-00": true, "b.dump.tmp-00": false, ".b.dump": false} {
		if isTemp(name) != ok {
			t.Errorf("isTemp(%q) = %v", name, !ok)
		}
	}
}

// Public keys for unit tests (their private halves were thrown away).
const (
	testRSAKey     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0KJ48U6dXLTPQGDXO90mrZgg3HJPtn37Exob/jo/KV8JX201NBm97egtk9ud5+MGCqZ1Fb6I28KAw2BjAvy82f9k15/zMOVf71YEONe4qkM1ARlKFcol+SayN15vW59cNI7EG60kWSw7CjkugwS+dVvVeL+83bg/NI5DiNJbXhcFsZAU042ffBFy1X5EaPfnywhun7LhwdiasQdBLY7eu+1Hak7hSivFpLigDVo0zbJuavv2+ane9fcPFBrmNuIp2IHDN8mKXe4Zg/YN6AS4HuhzXMjJdEAQp5IabTEPtmmXPf3Q52+56wUnK4hjC0FeFiVFilOXynyvSxhvr9VaD"
	testEd25519Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJd9UedPf4M9UJj3qb31VbFk4IPs+tu+Fzb8BQTlOru1"
)

// A marker or record outside the directory is refused (the contract itself is storetest's).
func TestOutsideTheDirectoryRefused(t *testing.T) {
	srv := testenv.StartSSHD(t)
	s := dial(t, options(srv))
	ctx := context.Background()
	if _, err := s.MarkerExists(ctx, "../outside"); err == nil {
		t.Error("a key outside the directory was looked up")
	}
	if err := s.Replace(ctx, "../escape.verified.json", []byte("x")); err == nil {
		t.Error("a key outside the directory was written")
	}
	if err := s.Remove(ctx, "../escape.dump"); err == nil || !strings.Contains(err.Error(), "not a relative path") {
		t.Fatalf("Remove outside the directory: %v", err)
	}
}

// SFTP_KNOWN_HOSTS pins a key of a type the server does not have (an RSA or ECDSA line for a
// server with an Ed25519 key only): the error names the pinned key, the server's types and its
// key, and what to put in SFTP_KNOWN_HOSTS, rather than "no common algorithm".
func TestPinnedKeyOfAnotherType(t *testing.T) {
	srv := testenv.StartSSHD(t)
	_, _, serverKey, _, _, err := ssh.ParseKnownHosts([]byte(srv.KnownHosts))
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := ssh.NewPublicKey(&ecKey.PublicKey)
	rsaPub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(testRSAKey))
	for _, pinned := range []ssh.PublicKey{rsaPub, ecPub} {
		t.Run(pinned.Type(), func(t *testing.T) {
			o := options(srv)
			o.KnownHosts = knownhosts.Line([]string{srv.Addr()}, pinned)
			_, err := Dial(context.Background(), o)
			if !errors.Is(err, ErrHostKey) {
				t.Fatalf("Dial = %v, want ErrHostKey", err)
			}
			t.Logf("error: %v", err)
			for _, want := range []string{
				"pins only " + pinned.Type() + " " + ssh.FingerprintSHA256(pinned),
				"offers host keys of type ssh-ed25519 only",
				"its key is ssh-ed25519 " + ssh.FingerprintSHA256(serverKey),
				"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
				fmt.Sprintf("`ssh-keyscan -p %d 127.0.0.1`", srv.Port),
				"SFTP_KNOWN_HOSTS",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q", want)
				}
			}
			if strings.Contains(err.Error(), "no common algorithm") {
				t.Errorf("the error is x/crypto's: %v", err)
			}
		})
	}
	wantNoFiles(t, srv.Root)
}

// The server's disk fills up during an upload: OpenSSH answers only SSH_FX_FAILURE, and the
// error says that the disk is full, with its free space, naming the destination; the
// temporary file is removed.
func TestServerDiskFull(t *testing.T) {
	srv := testenv.StartSSHD(t)
	o := options(srv)
	o.Dir = srv.SmallDisk(t, 4<<20)
	s := dial(t, o)
	for _, size := range []int64{16 << 20, store.UnknownSize} {
		err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: size}, io.LimitReader(endless{}, 16<<20))
		if err == nil {
			t.Fatalf("size %d: a 16 MiB Put onto a 4 MiB disk succeeded", size)
		}
		t.Logf("size %d: %v", size, err)
		for _, want := range []string{
			s.Location("shop/b.dump"), "the server's disk is full", "the filesystem holding " + o.Dir + " has ", " free of 4.0 MiB",
			"name a directory on another disk in ARCHIVE_URL",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("size %d: the error does not say %q", size, want)
			}
		}
		wantNoFiles(t, o.Dir)
	}
	// Space freed: the same store writes again.
	if err := s.Put(context.Background(), store.Object{Key: "shop/b.dump", Size: 3}, strings.NewReader("abc")); err != nil {
		t.Fatalf("Put after the failures: %v", err)
	}
}

// A filesystem the server has remounted read-only (as Linux does after disk errors) also
// answers SSH_FX_FAILURE: the error says so rather than blaming a full disk.
func TestServerFilesystemReadOnly(t *testing.T) {
	srv := testenv.StartSSHD(t)
	o := options(srv)
	o.Dir = srv.SmallDisk(t, 4<<20)
	s := dial(t, o)
	if out, err := exec.Command("mount", "-o", "remount,ro", o.Dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", o.Dir, err, out)
	}
	err := s.Put(context.Background(), store.Object{Key: "b.dump", Size: 3}, strings.NewReader("abc"))
	if err == nil {
		t.Fatal("Put onto a read-only filesystem succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{s.Location("b.dump"), "the filesystem holding " + o.Dir + " is mounted read-only on the server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(err.Error(), "disk is full") {
		t.Errorf("a read-only filesystem called full: %v", err)
	}
}

// The server's user may not enter the retention markers' directory (made by root, say): the
// lookup and the write of a marker say which directory refuses what, and how to fix it on the
// server — not an S3 policy.
func TestMarkerPermissionDenied(t *testing.T) {
	srv := testenv.StartSSHDAs(t, "nobody")
	s := dial(t, options(srv))
	ctx := context.Background()
	markers := filepath.Join(srv.Root, "_pgoffsite-retention")
	if err := os.MkdirAll(filepath.Join(markers, "shop"), 0o700); err != nil { // root's, as the test runs
		t.Fatal(err)
	}
	marker := "_pgoffsite-retention/shop/DATABASE/monthly/2026-11"
	_, lookupErr := s.MarkerExists(ctx, marker)
	if !errors.Is(lookupErr, fs.ErrPermission) {
		t.Fatalf("MarkerExists = %v, want a permission error", lookupErr)
	}
	t.Logf("lookup: %v", lookupErr)
	fix := "on the server, as root, run `chown -R nobody " + srv.Root + " && chmod -R u+rwX " + srv.Root + "`"
	for _, want := range []string{s.Location(marker), "the SFTP user nobody may not look inside " + markers + " (drwx------, owner uid 0", fix} {
		if !strings.Contains(lookupErr.Error(), want) {
			t.Errorf("the lookup's error does not say %q", want)
		}
	}
	// Markers are written with Put; here the directory can be entered but not written to.
	os.Chmod(markers, 0o755)
	os.Chmod(filepath.Join(markers, "shop"), 0o755)
	err := s.Put(ctx, store.Object{Key: marker, Size: 2}, strings.NewReader("{}"))
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Put = %v, want a permission error", err)
	}
	t.Logf("write: %v", err)
	for _, want := range []string{s.Location(marker), "the SFTP user nobody may not create or remove files in " + filepath.Join(markers, "shop") + " (drwxr-xr-x, owner uid 0", fix} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the write's error does not say %q", want)
		}
	}
	for _, e := range []error{lookupErr, err} {
		if strings.Contains(e.Error(), "policy") {
			t.Errorf("an S3 fix for an SFTP server: %v", e)
		}
	}
	// Once fixed as the message says, both work.
	if out, err := exec.Command("sh", "-c", "chown -R nobody "+srv.Root+" && chmod -R u+rwX "+srv.Root).CombinedOutput(); err != nil {
		t.Fatalf("the fix: %v: %s", err, out)
	}
	if err := s.Put(ctx, store.Object{Key: marker, Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatalf("Put after the fix: %v", err)
	}
	if ok, err := s.MarkerExists(ctx, marker); !ok || err != nil {
		t.Errorf("MarkerExists after the fix: %v, %v", ok, err)
	}
}

// A directory above the store's that the user may not pass through is named, with its own fix.
func TestStoreDirUnreachable(t *testing.T) {
	srv := testenv.StartSSHDAs(t, "nobody")
	o := options(srv)
	parent := filepath.Join(srv.Root, "locked")
	o.Dir = filepath.Join(parent, "archive")
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(o.Dir, os.Getuid(), os.Getgid())
	s := dial(t, o)
	err := s.Put(context.Background(), store.Object{Key: "b.dump", Size: 1}, strings.NewReader("x"))
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Put = %v, want a permission error", err)
	}
	t.Logf("error: %v", err)
	if want := "nobody must be able to pass through " + parent + " to reach " + o.Dir + ": on the server, as root, run `chmod o+x " + parent + "`"; !strings.Contains(err.Error(), want) {
		t.Errorf("the error does not say %q", want)
	}
}
