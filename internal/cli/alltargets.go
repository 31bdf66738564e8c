package cli

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// listAllTimeout bounds the listing of the databases BACKUP_TARGETS=all archives: it is read
// before the command's context exists, so it has its own way out.
const listAllTimeout = 2 * time.Minute

// listAllTargets adds to the configuration every Heroku Postgres database the key can see, less
// BACKUP_EXCLUDE (BACKUP_TARGETS=all): one paged list of the account's add-ons.
func (f *Factory) listAllTargets() error {
	if f.cfg.HerokuAPIKey == "" { // verify and status read no key otherwise
		return errors.New("BACKUP_TARGETS=all: listing the Heroku databases needs HEROKU_API_KEY, which is not set here; set it, or list the targets in BACKUP_TARGETS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), listAllTimeout)
	defer cancel()
	dbs, err := f.Heroku().PostgresAddons(ctx)
	if err != nil {
		return &failedError{fmt.Errorf("BACKUP_TARGETS=all: cannot list the Heroku Postgres databases the key can see: %w", err)}
	}
	cfg, err := f.cfg.WithDatabases(dbs)
	*f.cfg = cfg
	return err
}
