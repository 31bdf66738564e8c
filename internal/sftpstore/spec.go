package sftpstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

const (
	// DefaultKeyVar holds the private key of sftp:// destinations that name no key=.
	DefaultKeyVar = "SFTP_PRIVATE_KEY"
	// KnownHostsVar pins the host keys of every sftp:// destination.
	KnownHostsVar = "SFTP_KNOWN_HOSTS"
)

// Scheme names the kind in ARCHIVE_URL: sftp://user@host[:port]/absolute/dir.
const Scheme = "sftp"

// Settings are an SFTP destination's, as its URL gives them.
type Settings struct {
	User   string
	Host   string // in lower case
	Port   int    // 22 when the URL gives none
	Dir    string // the absolute directory on the server
	KeyVar string // the variable holding the private key: SFTP_PRIVATE_KEY, or key=NAME
}

func (s Settings) Location() string {
	host := s.Host
	if s.Port != 0 && s.Port != 22 {
		host = fmt.Sprintf("%s:%d", s.Host, s.Port)
	}
	return "sftp://" + s.User + "@" + host + s.Dir
}

// Identity: host names are already in lower case.
func (s Settings) Identity() string { return s.Location() }

func (s Settings) SecretVars() []string {
	if s.KeyVar == "" {
		return nil
	}
	return []string{s.KeyVar}
}

// Archive is the destination s describes.
func (s Settings) Archive() spec.Archive { return spec.Archive{Scheme: Scheme, Settings: s} }

// settingsOf are a's settings; zero when its URL could not be read.
func settingsOf(a spec.Archive) Settings {
	s, _ := a.Settings.(Settings)
	return s
}

// Parser reads sftp://user@host[:port]/absolute/dir destinations and checks the private keys
// and pinned host keys they need.
type Parser struct{}

// GlobalVars: every server's host key is pinned in SFTP_KNOWN_HOSTS.
func (Parser) GlobalVars(spec.Archive) []string { return []string{KnownHostsVar} }

func (Parser) TakesUser() bool  { return true }
func (Parser) TakesQuery() bool { return true }

// Parse reads u; a password in it is reported after the rest, since key= names the variable
// its fix is about.
func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	a := parse(u, r)
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			reportPassword(a, r)
		}
	}
	return a.Archive()
}

func parse(u *url.URL, r spec.Field) Settings {
	// Host names are case-insensitive, and ssh matches known_hosts lines in lower case.
	a := Settings{Host: strings.ToLower(u.Hostname()), KeyVar: DefaultKeyVar}
	const form = "write sftp://user@host[:port]/absolute/dir"
	if u.User != nil {
		a.User = u.User.Username()
	}
	if a.Host == "" {
		r.Add(r.Shown()+" names no host", form+" (two slashes before the user)")
		return a
	}
	if a.User == "" {
		r.Add(r.Shown()+" names no user", form+", e.g. sftp://backup@vps.example.com/srv/pgoffsite")
	}
	a.Port = 22
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			r.Add(r.Shown()+" has a port outside 1-65535", form+", with the port sshd listens on (22 when left out)")
		}
		a.Port = n
	}
	switch dir := path.Clean("/" + u.Path); {
	case u.Path == "" || dir == "/":
		r.Add(r.Shown()+" names no directory", "name the directory for the archives on the server, e.g. sftp://backup@host/srv/pgoffsite")
	default:
		a.Dir = dir
	}
	q := r.Query(u, []string{"key"}, "use only key=NAME, the variable holding this destination's private key (SFTP_PRIVATE_KEY when left out)")
	if v, ok := q["key"]; ok {
		if !spec.IsVarName(v) {
			r.Add("key= does not name a variable",
				"write key=NAME with NAME in capitals, digits and underscores, e.g. key=VPS_PRIVATE_KEY (never the key itself)")
		} else {
			a.KeyVar = v
		}
	}
	return a
}

// reportPassword reports a password in an sftp:// URL (sftp://user:PASSWORD@host/dir), without
// quoting it: pgoffsite logs in with a private key only.
func reportPassword(a Settings, r spec.Field) {
	keyVar := a.KeyVar
	if keyVar == "" {
		keyVar = DefaultKeyVar
	}
	r.Add("has a password in it (between the user name and @): pgoffsite logs in to SFTP servers with a private key only, never a password",
		"write the URL without it, e.g. sftp://backup@vps.example.com/srv/pgoffsite, and change that password on the server, since it was in a config var; "+
			"then make a key for pgoffsite alone with `ssh-keygen -t ed25519 -N '' -f pgoffsite_ed25519`, add pgoffsite_ed25519.pub to the server's authorized_keys, "+
			"and heroku config:set "+keyVar+"=\"$(cat pgoffsite_ed25519)\" ("+keyVar+" holds the private key of this destination; key=NAME in the URL names another variable)")
}

// EnvChecker checks each destination's private key variable and that SFTP_KNOWN_HOSTS pins its
// server's host key.
func (Parser) EnvChecker(getenv func(string) string) func(spec.Archive, spec.Field) {
	checked := map[string]bool{}
	hostsRead, hostsSet := false, false
	return func(d spec.Archive, r spec.Field) {
		a := settingsOf(d)
		// A URL too broken to read says nothing of which variable holds its key: its own
		// problem is reported, not a guess at the variable.
		if a.KeyVar != "" && !checked[a.KeyVar] {
			checked[a.KeyVar] = true
			checkPrivateKey(r, a.KeyVar, getenv(a.KeyVar))
		}
		if a.Host == "" || a.Port < 1 || a.Port > 65535 {
			return // already reported
		}
		text := getenv(KnownHostsVar)
		if !hostsRead {
			hostsRead, hostsSet = true, checkKnownHosts(r, text, a)
		}
		if hostsSet && !Pinned(text, a.Host, a.Port) {
			addr := knownhosts.Normalize(net.JoinHostPort(a.Host, strconv.Itoa(a.Port)))
			r.AddVar(KnownHostsVar, r.Label()+"has no line for "+addr+", the server of "+r.Quote(a.Location()), keyscanFix(a))
		}
	}
}

func keyscanFix(a Settings) string {
	return fmt.Sprintf("on a machine you trust, run `ssh-keyscan -p %d %s`, check the key against the server's own fingerprint "+
		"(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server), and add the lines it prints to SFTP_KNOWN_HOSTS; "+
		"for this server alone: heroku config:set SFTP_KNOWN_HOSTS=\"$(ssh-keyscan -p %d %s)\"", a.Port, a.Host, a.Port, a.Host)
}

// checkPrivateKey checks that the variable holds a private key ssh can use without a passphrase.
// The key is never quoted, nor the parser's error, which could carry a piece of it.
func checkPrivateKey(r spec.Field, name, text string) {
	msg, named := "not set, and ARCHIVE_URL has an sftp:// destination", ""
	if name != DefaultKeyVar {
		named = " (ARCHIVE_URL's " + r.Name() + " has key=" + name + ")"
		msg = "not set" + named
	}
	keygen := "make a key for pgoffsite alone with `ssh-keygen -t ed25519 -N '' -f pgoffsite_ed25519`, add pgoffsite_ed25519.pub to the server's authorized_keys, and set heroku config:set " +
		name + "=\"$(cat pgoffsite_ed25519)\""
	if strings.TrimSpace(text) == "" {
		r.AddVar(name, msg, keygen)
		return
	}
	_, err := ssh.ParsePrivateKey([]byte(text))
	var encrypted *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &encrypted):
		r.AddVar(name, "holds an encrypted private key"+named+": it must be unencrypted, because the dyno cannot type a passphrase",
			"set an unencrypted key made for pgoffsite alone (ssh-keygen -p -N '' -f FILE removes the passphrase of a copy); "+keygen)
	case err != nil:
		r.AddVar(name, "does not hold a private key ssh can read"+named,
			"paste the whole private key file, BEGIN and END lines included: "+keygen)
	}
}

// checkKnownHosts parses SFTP_KNOWN_HOSTS as ssh's known_hosts file, reporting the lines it
// cannot read, and tells whether it is set. The fix of a missing variable shows the command for
// first, the first sftp:// destination.
func checkKnownHosts(r spec.Field, text string, first Settings) bool {
	if strings.TrimSpace(text) == "" {
		r.AddVar(KnownHostsVar, "not set, and ARCHIVE_URL has an sftp:// destination: its host key must be pinned (no trust on first use)", keyscanFix(first))
		return false
	}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(line)); err != nil {
			r.AddVar(KnownHostsVar, fmt.Sprintf("line %d is not a known_hosts line", i+1),
				"paste the lines `ssh-keyscan -p PORT HOST` prints: host, key type and key, e.g. [vps.example.com]:2222 ssh-ed25519 AAAA...")
		}
	}
	return true
}
