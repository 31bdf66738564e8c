package sftpstore

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsVar names the known_hosts lines in messages, as the user configures them.
const knownHostsVar = "SFTP_KNOWN_HOSTS"

// pins is what the known_hosts text pins for one server.
type pins struct {
	check ssh.HostKeyCallback
	// algos are the host key algorithms to ask for: the pinned keys' own, so that a server
	// holding several keys presents the pinned one rather than failing on another it prefers.
	algos []string
	keys  []ssh.PublicKey // the keys pinned for the server
}

// pinnedHostKeys builds the host key check from the known_hosts text and makes sure it holds a
// key for addr, before any connection is made.
func pinnedHostKeys(text, addr, host string, port int) (pins, error) {
	entry := knownhosts.Normalize(addr)
	scan := fmt.Sprintf("ssh-keyscan -p %d %s", port, host)
	if strings.TrimSpace(text) == "" {
		return pins{}, fmt.Errorf("%s is empty: the server's host key must be pinned; get it with %q on a machine you trust and check its fingerprint by hand (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server)", knownHostsVar, scan)
	}
	cb, err := knownHostsCallback(text)
	if err != nil {
		return pins{}, err
	}
	// A key nobody pins shows which keys are pinned for the host.
	pub, _, _ := ed25519.GenerateKey(nil)
	probe, _ := ssh.NewPublicKey(pub)
	var keyErr *knownhosts.KeyError
	err = cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe)
	if err == nil || !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		return pins{}, fmt.Errorf("%s has no key for %s: get it with %q on a machine you trust, check its fingerprint by hand (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server) and add the line to %s", knownHostsVar, entry, scan, knownHostsVar)
	}
	p := pins{check: cb}
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		p.keys = append(p.keys, k.Key)
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				p.algos = append(p.algos, a)
			}
		}
	}
	return p, nil
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
	_, err := pinnedHostKeys(text, net.JoinHostPort(host, strconv.Itoa(port)), host, port)
	return err == nil
}

// unpinnedTypes explains a server that offers no host key of a type SFTP_KNOWN_HOSTS pins for
// it: the pinned keys, the types the server offers and, read over a second connection that
// goes no further than the key exchange, the fingerprint of its key.
func (s *Store) unpinnedTypes(ctx context.Context, entry string, offered []string) error {
	var pinned []string
	for _, k := range s.pins.keys {
		pinned = append(pinned, describeKey(k))
	}
	presented, keyType := "its key could not be read", strings.Join(offered, "")
	if key, err := s.serverKey(ctx, offered); err != nil {
		presented += ": " + err.Error()
	} else {
		presented, keyType = "its key is "+describeKey(key), key.Type()
	}
	return fmt.Errorf("%s offers host keys of type %s only (%s), but %s pins only %s for it, so the key cannot be checked and nothing was written (the pinned line may be for another key of this server, or this may not be your server): "+
		"check the server's key by hand (ssh-keygen -lf /etc/ssh/%s on the server); "+
		"if it matches, put the line `ssh-keyscan -p %d %s` prints for it in %s in place of the one for %s: %w",
		entry, strings.Join(offered, ", "), presented, knownHostsVar, strings.Join(pinned, ", "),
		hostKeyFile(keyType), s.o.Port, s.o.Host, knownHostsVar, entry, ErrHostKey)
}

// hostKeyFile is where OpenSSH keeps the public host key of a type.
func hostKeyFile(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ssh_host_ed25519_key.pub"
	case strings.Contains(t, "ecdsa"):
		return "ssh_host_ecdsa_key.pub"
	case strings.Contains(t, "rsa"):
		return "ssh_host_rsa_key.pub"
	}
	return "ssh_host_*_key.pub"
}

// serverKey reads the host key the server presents for one of the algorithms it offered, on a
// connection of its own that ends with the key exchange: nothing is authenticated or sent.
func (s *Store) serverKey(ctx context.Context, offered []string) (ssh.PublicKey, error) {
	known := append(ssh.SupportedAlgorithms().HostKeys, ssh.InsecureAlgorithms().HostKeys...)
	var algos []string
	for _, a := range offered {
		if slices.Contains(known, a) {
			algos = append(algos, a)
		}
	}
	if len(algos) == 0 {
		return nil, errors.New("pgoffsite knows none of these types")
	}
	// The same bound as a connection's: a server that stops answering mid-exchange cannot hold
	// the explanation of a refusal.
	ctx, cancel := context.WithTimeout(ctx, s.o.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var key ssh.PublicKey
	errGot := errors.New("host key read")
	_, _, _, err = ssh.NewClientConn(nc, s.addr, &ssh.ClientConfig{
		User:              s.o.User,
		HostKeyAlgorithms: algos,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGot
		},
	})
	if key == nil {
		return nil, err
	}
	return key, nil
}

// describeKey names a key as ssh-keygen -l shows it: its type and SHA256 fingerprint.
func describeKey(k ssh.PublicKey) string {
	return k.Type() + " " + ssh.FingerprintSHA256(k)
}
