package dest

import (
	"context"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/preflight"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// fileKind is a directory: file:///absolute/dir.
type fileKind struct{}

func (fileKind) Open(_ context.Context, _ config.Config, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := filestore.New(a.Dir)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}

// OpenReader opens the directory as a backup does: the same store reads it.
func (k fileKind) OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error) {
	return readAsWritten(ctx, k, cfg, a)
}

// Check opens the directory and writes the probe there.
func (k fileKind) Check(ctx context.Context, r preflight.Reporter, cfg config.Config, _ int, a spec.Archive) {
	openAndProbe(ctx, k, r, cfg, a)
}
