package testenv

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDBinary is the OpenSSH server the SFTP tests run (Debian's openssh-server).
const SSHDBinary = "/usr/sbin/sshd"

// SSHD is a real OpenSSH server on loopback with a throwaway host key and client key, serving
// SFTP (internal-sftp) to the current user. Each StartSSHD starts its own server.
type SSHD struct {
	Host       string // 127.0.0.1
	Port       int
	User       string // the user the tests log in as: the current user
	PrivateKey string // the client's private key, OpenSSH PEM text
	KnownHosts string // a known_hosts line pinning this server's host key at [127.0.0.1]:PORT
	Root       string // an empty directory the tests may use as the destination directory
	Log        string // path of the server's log (-e: its messages on stderr)

	dir      string
	uid, gid int // of User
	cmd      *exec.Cmd
	exited   <-chan struct{}
	once     sync.Once
}

// StartSSHD starts an OpenSSH server for t and stops it when t ends. Without sshd or ssh-keygen
// t is skipped (failed in CI).
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if _, serr := os.Stat(SSHDBinary); serr != nil || err != nil {
		missing(t, "OpenSSH server ("+SSHDBinary+") or ssh-keygen not found", "apt-get install -y openssh-server")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s, err := startSSHD(keygen, u)
	if err != nil {
		t.Fatalf("testenv: start sshd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartSSHDAs starts an OpenSSH server like StartSSHD whose tests log in as the system user
// name (e.g. "nobody") instead of the current one: permission bits then hold, as they do for
// the account a real server gives pgoffsite, where root would ignore them. Root belongs to that
// user. Serving another user takes root: without it t is skipped (failed in CI).
func StartSSHDAs(t testing.TB, name string) *SSHD {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if _, serr := os.Stat(SSHDBinary); serr != nil || err != nil {
		missing(t, "OpenSSH server ("+SSHDBinary+") or ssh-keygen not found", "apt-get install -y openssh-server")
	}
	if os.Geteuid() != 0 {
		missing(t, "an SSH server for the user "+name+" needs root", "run the tests as root, as CI does")
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s, err := startSSHD(keygen, u)
	if err != nil {
		t.Fatalf("testenv: start sshd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// startSSHD starts a server for logins as u.
func startSSHD(keygen string, u *user.User) (*SSHD, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", u.Username, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q", u.Username, u.Gid)
	}
	// sshd's privilege separation needs its empty directory; it is the one thing outside the
	// temporary directory this server uses, and creating it changes nothing of the machine's sshd.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("create /run/sshd: %w", err)
	}
	dir, err := serverDir("sshd")
	if err != nil {
		return nil, err
	}
	s := &SSHD{Host: "127.0.0.1", User: u.Username, Root: filepath.Join(dir, "root"), Log: filepath.Join(dir, "sshd.log"), dir: dir,
		uid: uid, gid: gid}
	if err := os.Mkdir(s.Root, 0o700); err != nil {
		return nil, err
	}
	if uid != os.Geteuid() {
		// sshd reads authorized_keys as the user, who must reach it; Root is theirs.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
		if err := os.Chown(s.Root, uid, gid); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"host", "client"} {
		out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "pgoffsite-test-"+name, "-f", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ssh-keygen %s: %v: %s", name, err, out)
		}
	}
	priv, err := os.ReadFile(filepath.Join(dir, "client"))
	if err != nil {
		return nil, err
	}
	s.PrivateKey = string(priv)
	hostPub, err := os.ReadFile(filepath.Join(dir, "host.pub"))
	if err != nil {
		return nil, err
	}
	clientPub, err := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), clientPub, 0o644); err != nil {
		return nil, err
	}
	config := strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UseDNS no",
		"Subsystem sftp internal-sftp",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	// The port is free when chosen but another process may take it first: try a few.
	for range 3 {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		s.Port = ports[0]
		if err = s.start(cfgPath); err == nil {
			break
		} else if !strings.Contains(err.Error(), "Address already in use") {
			return nil, err
		}
	}
	if s.cmd == nil {
		return nil, fmt.Errorf("no free port for sshd:\n%s", readLog(s.Log))
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(hostPub)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", filepath.Join(dir, "host.pub"), err)
	}
	s.KnownHosts = knownhosts.Line([]string{s.Addr()}, pub)
	return s, nil
}

// start runs sshd on s.Port and waits until it greets with its SSH banner.
func (s *SSHD) start(cfgPath string) error {
	cmd := exec.Command(SSHDBinary, "-D", "-e", "-f", cfgPath, "-p", strconv.Itoa(s.Port))
	// Its own process group, so that Stop can signal the server and the sessions it forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := onExit(treeKillScript(cmd.Process.Pid)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	exited := (<-chan struct{})(done)
	var last error
	ok := waitFor(StartTimeout, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		last = greets(s.Addr())
		return last == nil
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited: %v\n%s", SSHDBinary, cmd.ProcessState, readLog(s.Log))
	default:
	}
	if !ok {
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("sshd not answering at %s within %s: %v\n%s", s.Addr(), StartTimeout, last, readLog(s.Log))
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// greets reports whether an SSH server at addr sends its version banner.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("banner %q", line)
	}
	return nil
}

// Addr is host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Stop kills the server and every session it forked, so open connections break as when the
// machine goes away. It is safe to call more than once.
func (s *SSHD) Stop() {
	s.once.Do(func() {
		for _, pid := range descendants(s.cmd.Process.Pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		s.cmd.Process.Kill()
		<-s.exited
	})
}

// FreezeSessions stops (SIGSTOP) the processes serving the connections open now: a server that
// hangs, its connections open and silent. New connections are served as before. thaw resumes
// the stopped processes; Stop ends them either way.
func (s *SSHD) FreezeSessions() (thaw func()) {
	pids := descendants(s.cmd.Process.Pid)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
}

// OtherKnownHosts returns a known_hosts line for this server's address with a host key it does
// not have: what a client pinning the wrong key, or talking to an impostor, sees.
func (s *SSHD) OtherKnownHosts(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return knownhosts.Line([]string{s.Addr()}, key)
}

// descendants returns the processes below pid, children before their parents' siblings are
// reached, found through /proc. sshd starts each connection in a session of its own, so its
// process group does not hold them.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may contain spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// treeKillScript kills pid and the processes below it (for the cleanup process, when the test
// binary ends without Stop).
func treeKillScript(pid int) string {
	return fmt.Sprintf("k() { for c in $(pgrep -P $1); do k $c; done; kill -9 $1; }; k %d", pid)
}

// SmallDisk mounts a filesystem of size bytes (a tmpfs) for the server's user and returns its
// directory: a destination whose disk fills up. Mounting needs root, as bin/test runs in CI;
// without it t is skipped (failed in CI). It is unmounted when t ends.
func (s *SSHD) SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgoffsite-sshd-disk-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		missing(t, fmt.Sprintf("cannot mount a %d-byte tmpfs for a full-disk test: %v: %s", size, err, strings.TrimSpace(string(out))),
			"run the tests as root, as CI does")
	}
	if err := onExit("umount -l " + shellQuote(dir) + "; rmdir " + shellQuote(dir)); err != nil {
		t.Errorf("testenv: %v", err)
	}
	if err := os.Chown(dir, s.uid, s.gid); err != nil {
		t.Errorf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("testenv: umount %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}
