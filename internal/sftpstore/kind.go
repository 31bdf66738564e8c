package sftpstore

import (
	"context"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Kind is an SFTP server: sftp://user@host[:port]/absolute/dir, its host key pinned by
// SFTP_KNOWN_HOSTS, its private key in SFTP_PRIVATE_KEY or the variable key=NAME names. The
// preflight connects (the pinned host key, the private key) and writes the probe the way a
// backup writes (a temporary name, renamed when complete).
var Kind spec.Kind = spec.Plain{Parser: Parser{}, OpenStore: open}

// open connects with the destination's private key, to the server SFTP_KNOWN_HOSTS pins.
func open(ctx context.Context, env spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	s := settingsOf(a)
	st, err := Dial(ctx, Options{User: s.User, Host: s.Host, Port: s.Port, Dir: s.Dir,
		PrivateKey: env.Getenv(s.KeyVar), KnownHosts: env.Getenv(KnownHostsVar)})
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}
