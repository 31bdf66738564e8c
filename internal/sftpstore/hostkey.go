package sftpstore

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsVar names the known_hosts lines in messages, as the user configures them.
const knownHostsVar = "SFTP_KNOWN_HOSTS"

// pinnedHostKeys builds the host key check from the known_hosts text and makes sure it holds a
// key for addr, before any connection is made. It also returns the host key algorithms to ask
// for: the pinned keys' own, so that a server holding several keys presents the pinned one
// rather than failing on another it prefers.
func pinnedHostKeys(text, addr, host string, port int) (ssh.HostKeyCallback, []string, error) {
	entry := knownhosts.Normalize(addr)
	scan := fmt.Sprintf("ssh-keyscan -p %d %s", port, host)
	if strings.TrimSpace(text) == "" {
		return nil, nil, fmt.Errorf("%s is empty: the server's host key must be pinned; get it with %q on a machine you trust and check its fingerprint by hand (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server)", knownHostsVar, scan)
	}
	cb, err := knownHostsCallback(text)
	if err != nil {
		return nil, nil, err
	}
	// A key nobody pins shows which keys are pinned for the host.
	pub, _, _ := ed25519.GenerateKey(nil)
	probe, _ := ssh.NewPublicKey(pub)
	var keyErr *knownhosts.KeyError
	err = cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe)
	if err == nil || !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		return nil, nil, fmt.Errorf("%s has no key for %s: get it with %q on a machine you trust, check its fingerprint by hand (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server) and add the line to %s", knownHostsVar, entry, scan, knownHostsVar)
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return cb, algos, nil
}

// knownHostsCallback parses known_hosts text. knownhosts reads only files, so the text goes
// through one that is removed at once; it holds public keys only.
func knownHostsCallback(text string) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "pgoffsite-known-hosts-")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", knownHostsVar, err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.WriteString(text + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", knownHostsVar, err)
	}
	cb, err := knownhosts.New(name)
	if err != nil {
		// "knownhosts: FILE:LINE: problem": name the variable instead of the file.
		return nil, fmt.Errorf("%s is not valid known_hosts text (one \"host keytype base64key\" per line, as ssh-keyscan prints): %s",
			knownHostsVar, strings.ReplaceAll(err.Error(), name+":", "line "))
	}
	return cb, nil
}

// algorithmsFor returns the host key algorithms that use a key of type t.
func algorithmsFor(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{t}
	}
}

// hostKeyError explains a refused host key; err is the check's.
func hostKeyError(entry string, key ssh.PublicKey, err error) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	presented := key.Type() + " " + ssh.FingerprintSHA256(key)
	switch {
	case errors.As(err, &revoked):
		return fmt.Errorf("%s presented the host key %s, which %s marks @revoked: %w", entry, presented, knownHostsVar, ErrHostKey)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		var pinned []string
		for _, k := range keyErr.Want {
			pinned = append(pinned, k.Key.Type()+" "+ssh.FingerprintSHA256(k.Key))
		}
		return fmt.Errorf("%s presented the host key %s, but %s pins %s: someone may be intercepting the connection, or the server's key was changed; nothing was written. If the change is known, replace the line with the new key after checking its fingerprint by hand: %w",
			entry, presented, knownHostsVar, strings.Join(pinned, ", "), ErrHostKey)
	default:
		return fmt.Errorf("%s presented the host key %s, which %s does not hold: %w", entry, presented, knownHostsVar, ErrHostKey)
	}
}

// Pinned tells whether the known_hosts text pins a key for host:port, matched as ssh matches
// (plain, hashed and wildcard lines, "!" negation): the rule config checks SFTP_KNOWN_HOSTS
// with before a run is the one Dial applies.
func Pinned(text, host string, port int) bool {
	_, _, err := pinnedHostKeys(text, net.JoinHostPort(host, strconv.Itoa(port)), host, port)
	return err == nil
}
