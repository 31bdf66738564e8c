package dumpsource

import (
	"context"
	"fmt"
	"os"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Env locates env:VAR targets: a Postgres URL in pgoffsite's own environment. Its archives are
// filed under VAR in place of app and database.
type Env struct {
	Getenv func(string) string // nil is os.Getenv
}

// Locate reads the variable t names.
func (e Env) Locate(ctx context.Context, t archive.Target) (Database, error) {
	get := e.Getenv
	if get == nil {
		get = os.Getenv
	}
	v := get(t.Database)
	if v == "" {
		return Database{}, fmt.Errorf("dumpsource: %s: %s is not set in pgoffsite's environment (BACKUP_TARGETS names it)", t, t.Database)
	}
	return Database{URL: v, App: t.Database, Name: t.Database, EnvVar: t.Database}, nil
}

// HerokuAPI is what locating a Heroku database needs of the Platform API.
type HerokuAPI interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	DatabaseURL(ctx context.Context, db heroku.Database) (heroku.Secret, error)
}

// Heroku locates a Heroku target's database by its attachment's config var, for BACKUP_METHOD=pg_dump:
// filed under the same app and attachment as its PGBackups archives, always over TLS.
type Heroku struct {
	API HerokuAPI
}

// Locate resolves t and reads its URL.
func (h Heroku) Locate(ctx context.Context, t archive.Target) (Database, error) {
	db, err := h.API.Resolve(ctx, t.App, t.Database)
	if err != nil {
		return Database{}, err
	}
	u, err := h.API.DatabaseURL(ctx, db)
	if err != nil {
		return Database{}, err
	}
	return Database{URL: u.Reveal(), App: db.App, Name: db.Attachment, RequireTLS: true,
		Heroku: &archive.HerokuOrigin{App: db.App, Attachment: db.Attachment, Addon: db.AddonName, BillingApp: db.BillingApp, Plan: db.Plan}}, nil
}
