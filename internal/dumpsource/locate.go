package dumpsource

import (
	"context"
	"fmt"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Env locates env:VAR targets: a Postgres URL in pgoffsite's own environment, which config
// reads (config.Config.EnvURLs). Its archives are filed under VAR in place of app and database.
type Env struct {
	URLs map[string]string // the database URL of each env:VAR target, by VAR
}

// Locate takes the URL of the variable t names.
func (e Env) Locate(ctx context.Context, t archive.Target) (Database, error) {
	v := e.URLs[t.Database]
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
		Heroku: &catalog.HerokuOrigin{App: db.App, Attachment: db.Attachment, Addon: db.AddonName, BillingApp: db.BillingApp, Plan: db.Plan}}, nil
}
