package restore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/listing"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// ParseHerokuTarget checks what a restore into Heroku is asked (--from, --to app:DATABASE, --confirm,
// --clean) and returns the app and the database (DATABASE_URL when --to names none). Its errors
// say which flag fixes them.
func ParseHerokuTarget(from, to, confirm string, clean bool) (app, database string, err error) {
	if clean {
		return "", "", errors.New("--clean is for --to postgres://...; a Heroku restore always replaces the database's data")
	}
	app, database, _ = strings.Cut(to, ":")
	if database == "" {
		database = "DATABASE_URL"
	}
	switch {
	case from == "" || app == "":
		return "", "", errors.New("--from KEY and --to app:DATABASE (or --to postgres://...) are required")
	case confirm != app:
		return "", "", fmt.Errorf("this replaces all data of %s:%s; to proceed, add --confirm %s", app, database, app)
	}
	return app, database, nil
}

// PostgresTarget is a database to restore into, given by its URL.
type PostgresTarget struct {
	URL      string
	Host     string
	Database string
	// Secrets are the URL and its password: they must never be written anywhere.
	Secrets []string
}

// ParsePostgresTarget checks what a restore into any Postgres is asked (--from, --to postgres://...,
// --confirm, --clean). Its errors say which flag fixes them, and hold neither the URL nor its
// password.
func ParsePostgresTarget(from, to, confirm string, clean bool) (PostgresTarget, error) {
	t := PostgresTarget{URL: to, Secrets: []string{to}}
	u, err := url.Parse(to)
	if err == nil {
		if pw, ok := u.User.Password(); ok {
			t.Secrets = append(t.Secrets, pw)
		}
		t.Host, t.Database = u.Hostname(), strings.TrimPrefix(u.Path, "/")
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("--to is not a valid database URL (%v): write it as postgres://HOST:5432/DATABASE, with USER:PASSWORD@ before HOST and any special character of the password %%-escaped", err)
	case t.Database == "" || strings.Contains(t.Database, "/"):
		msg = "--to names no database: write it as postgres://HOST:5432/DATABASE, with USER:PASSWORD@ before HOST"
	case from == "":
		msg = "--from KEY is required: the archive's .dump key under ARCHIVE_URL"
	case !strings.HasSuffix(from, ".dump") && !catalog.IsEncrypted(from) && !listing.ByName(from):
		msg = fmt.Sprintf("--from %s is not an archive's key: it ends in .dump, or .dump.age when encrypted (the manifest beside it ends in .json)", from)
	case clean && confirm != t.Database:
		msg = fmt.Sprintf("--clean drops the archive's objects from database %s and restores them, replacing their data; to proceed, add --confirm %s", t.Database, t.Database)
	default:
		return t, nil
	}
	return PostgresTarget{}, errors.New(scrub.New(t.Secrets...).Scrub(msg))
}
