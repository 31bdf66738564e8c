package verify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
)

// ErrScratch: the scratch database a verification would restore into cannot be used. It says
// nothing of any archive: the caller's usage is what to fix, and no verification is recorded.
var ErrScratch = errors.New("the scratch database cannot be used")

// Scratch checks the scratch database of o (RestoreTo) before any archive is read: that it
// answers, and that it is empty, since a restore into a database holding tables of the same
// names fails, and that failure would be recorded against a good archive. Without RestoreTo
// there is nothing to check.
func Scratch(ctx context.Context, o Options) error {
	if o.RestoreTo == "" {
		return nil
	}
	name := "the scratch database"
	if u, err := url.Parse(o.RestoreTo); err == nil && u.Host != "" {
		name = fmt.Sprintf("scratch database %s on %s", strings.TrimPrefix(u.Path, "/"), u.Hostname())
	}
	objs, err := pgrestore.Objects(ctx, o.restore())
	if err != nil {
		return fmt.Errorf("verify: %w: %s does not answer (%w): nothing was verified; check the host, port, user and password in --restore-to, and that the database exists (createdb)",
			ErrScratch, name, err)
	}
	if len(objs) > 0 {
		if len(objs) > 10 {
			objs = append(objs[:10], "...")
		}
		return fmt.Errorf("verify: %w: %s is not empty (it holds %s): nothing was verified; give --restore-to an empty database (createdb NEW), which the verification fills",
			ErrScratch, name, strings.Join(objs, ", "))
	}
	return nil
}
