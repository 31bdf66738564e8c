package dest

import (
	"context"
	"os"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/preflight"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// sftpKind is an SFTP server: sftp://user@host[:port]/absolute/dir, its host key pinned by
// SFTP_KNOWN_HOSTS, its private key in SFTP_PRIVATE_KEY or the variable key=NAME names.
type sftpKind struct{}

func (sftpKind) Open(ctx context.Context, cfg config.Config, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := sftpstore.Dial(ctx, sftpstore.Options{User: a.User, Host: a.Host, Port: a.Port, Dir: a.Dir,
		PrivateKey: os.Getenv(a.KeyVar), KnownHosts: cfg.KnownHosts})
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}

// OpenReader connects as a backup does: the same account reads what it wrote.
func (k sftpKind) OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error) {
	return readAsWritten(ctx, k, cfg, a)
}

// Check connects (the pinned host key, the private key) and writes the probe the way a backup
// writes (a temporary name, renamed when complete).
func (k sftpKind) Check(ctx context.Context, r preflight.Reporter, cfg config.Config, _ int, a spec.Archive) {
	openAndProbe(ctx, k, r, cfg, a)
}
