package verify

import (
	"context"
	"fmt"
	"os"

	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
)

// staged is an archive of one stream written to a local file while it is checked, for
// pg_restore -j, which needs a file it can seek in. It is removed after the restore, whether
// the restore succeeded, failed or was interrupted.
type staged struct {
	f *os.File
	n int64
}

func stageIn(dir string) (*staged, error) {
	f, err := os.CreateTemp(dir, "pgoffsite-restore-*.dump")
	if err != nil {
		return nil, fmt.Errorf("--scratch %s: %w: give a directory with room for the archive, or restore in one session without --scratch", dir, err)
	}
	return &staged{f: f}, nil
}

func (s *staged) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("--scratch: write %s: %w: give a directory with room for the archive (%d bytes written so far)", s.f.Name(), err, s.n)
	}
	return n, nil
}

// restore restores the checked file with pg_restore -j o.Jobs; it returns the bytes staged.
func (s *staged) restore(ctx context.Context, o Options) (int64, error) {
	if err := s.f.Close(); err != nil {
		return s.n, fmt.Errorf("--scratch: %w", err)
	}
	return s.n, pgrestore.RestoreFile(ctx, o.restore(), s.f.Name(), o.Jobs)
}

func (s *staged) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}
