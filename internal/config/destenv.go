package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
)

// lookup reads a variable: the described ones as envconfig read them, the others (those a
// destination names) from the environment.
func (e env) lookup(name string) string {
	switch name {
	case DefaultKeyVar:
		return e.SFTPPrivateKey
	case "HEROKU_API_KEY":
		return e.HerokuAPIKey
	case "AWS_SECRET_ACCESS_KEY":
		return e.SecretAccessKey
	case "AWS_SESSION_TOKEN":
		return e.SessionToken
	case identityVar:
		return e.AgeIdentity
	case signingKeyVar:
		return e.BundleSigningKey
	case recipientsVar:
		return e.Recipients
	}
	return os.Getenv(name)
}

// destinationEnv checks the variables each destination reads: the key pair keys=NAME names,
// the SFTP private keys and the pinned host keys.
// as are archives' result for ARCHIVE_URL, one per field.
func (ck *checker) destinationEnv(e env, as []Archive) {
	fields := strings.Fields(e.ArchiveURL)
	checked := map[string]bool{} // each variable once, however many destinations read it
	var hosts *knownHosts
	for i, a := range as {
		d := dest{ck: ck, pos: i + 1, n: len(as), raw: fields[i]}
		switch a.Scheme {
		case "s3":
			if a.Keys == "" || checked["keys="+a.Keys] {
				continue
			}
			checked["keys="+a.Keys] = true
			// Reported under the variable itself, as for env:VAR targets: setup-bucket, run
			// with administrator keys, does not need the uploader's.
			for _, v := range []string{a.Keys + "_ACCESS_KEY_ID", a.Keys + "_SECRET_ACCESS_KEY"} {
				if strings.TrimSpace(os.Getenv(v)) == "" {
					ck.add(v, "not set, and ARCHIVE_URL's "+d.name()+" has keys="+a.Keys,
						"set the key pair of this destination's provider: heroku config:set "+v+"=...")
				}
			}
		case "sftp":
			// A URL too broken to read says nothing of which variable holds its key: its own
			// problem is reported, not a guess at the variable.
			if a.KeyVar != "" && !checked[a.KeyVar] {
				checked[a.KeyVar] = true
				ck.privateKey(d, a.KeyVar, e.lookup(a.KeyVar))
			}
			if a.Host == "" || a.Port < 1 || a.Port > 65535 {
				continue // already reported
			}
			if hosts == nil {
				hosts = ck.knownHosts(e.SFTPKnownHosts, a)
			}
			if hosts.set && !sftpstore.Pinned(e.SFTPKnownHosts, a.Host, a.Port) {
				addr := knownhosts.Normalize(net.JoinHostPort(a.Host, strconv.Itoa(a.Port)))
				ck.add("SFTP_KNOWN_HOSTS", d.label()+"has no line for "+addr+", the server of "+d.ck.q(a.String()),
					keyscanFix(a))
			}
		}
	}
}

func keyscanFix(a Archive) string {
	return fmt.Sprintf("on a machine you trust, run `ssh-keyscan -p %d %s`, check the key against the server's own fingerprint "+
		"(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server), and add the lines it prints to SFTP_KNOWN_HOSTS; "+
		"for this server alone: heroku config:set SFTP_KNOWN_HOSTS=\"$(ssh-keyscan -p %d %s)\"", a.Port, a.Host, a.Port, a.Host)
}

// privateKey checks that the variable holds a private key ssh can use without a passphrase.
// The key is never quoted, nor the parser's error, which could carry a piece of it.
func (ck *checker) privateKey(d dest, name, text string) {
	msg, named := "not set, and ARCHIVE_URL has an sftp:// destination", ""
	if name != DefaultKeyVar {
		named = " (ARCHIVE_URL's " + d.name() + " has key=" + name + ")"
		msg = "not set" + named
	}
	keygen := "make a key for pgoffsite alone with `ssh-keygen -t ed25519 -N '' -f pgoffsite_ed25519`, add pgoffsite_ed25519.pub to the server's authorized_keys, and set heroku config:set " +
		name + "=\"$(cat pgoffsite_ed25519)\""
	if strings.TrimSpace(text) == "" {
		ck.add(name, msg, keygen)
		return
	}
	_, err := ssh.ParsePrivateKey([]byte(text))
	var encrypted *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &encrypted):
		ck.add(name, "holds an encrypted private key"+named+": it must be unencrypted, because the dyno cannot type a passphrase",
			"set an unencrypted key made for pgoffsite alone (ssh-keygen -p -N '' -f FILE removes the passphrase of a copy); "+keygen)
	case err != nil:
		ck.add(name, "does not hold a private key ssh can read"+named,
			"paste the whole private key file, BEGIN and END lines included: "+keygen)
	}
}

// knownHosts is what SFTP_KNOWN_HOSTS holds; whether it pins a server's key is sftpstore's
// rule.
type knownHosts struct {
	set bool
}

// knownHosts parses SFTP_KNOWN_HOSTS as ssh's known_hosts file, reporting the lines it cannot read.
// The fix of a missing variable shows the command for first, the first sftp:// destination.
func (ck *checker) knownHosts(text string, first Archive) *knownHosts {
	const v = "SFTP_KNOWN_HOSTS"
	kh := &knownHosts{set: strings.TrimSpace(text) != ""}
	if !kh.set {
		ck.add(v, "not set, and ARCHIVE_URL has an sftp:// destination: its host key must be pinned (no trust on first use)", keyscanFix(first))
		return kh
	}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(line)); err != nil {
			ck.add(v, fmt.Sprintf("line %d is not a known_hosts line", i+1),
				"paste the lines `ssh-keyscan -p PORT HOST` prints: host, key type and key, e.g. [vps.example.com]:2222 ssh-ed25519 AAAA...")
		}
	}
	return kh
}
