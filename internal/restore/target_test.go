package restore

import (
	"strings"
	"testing"
)

// A restore into Heroku needs --from, an app, and that app's name again; --clean is refused,
// and the database defaults to DATABASE_URL.
func TestParseHerokuTarget(t *testing.T) {
	app, db, err := ParseHerokuTarget("k.dump", "shop", "shop", false)
	if err != nil || app != "shop" || db != "DATABASE_URL" {
		t.Errorf("shop: %q %q %v", app, db, err)
	}
	if app, db, err = ParseHerokuTarget("k.dump", "shop:HEROKU_POSTGRESQL_RED_URL", "shop", false); err != nil || app != "shop" || db != "HEROKU_POSTGRESQL_RED_URL" {
		t.Errorf("shop:HEROKU_POSTGRESQL_RED_URL: %q %q %v", app, db, err)
	}
	for _, tt := range []struct {
		from, to, confirm string
		clean             bool
		want              string
	}{
		{"k.dump", "shop", "shop", true, "--clean is for --to postgres://...; a Heroku restore always replaces the database's data"},
		{"", "shop", "shop", false, "--from KEY and --to app:DATABASE (or --to postgres://...) are required"},
		{"k.dump", ":DATABASE_URL", "", false, "--from KEY and --to app:DATABASE (or --to postgres://...) are required"},
		{"k.dump", "shop:DATABASE_URL", "shop-staging", false, "this replaces all data of shop:DATABASE_URL; to proceed, add --confirm shop"},
	} {
		if _, _, err := ParseHerokuTarget(tt.from, tt.to, tt.confirm, tt.clean); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: %v, want %s", tt, err, tt.want)
		}
	}
}

// A restore into any Postgres needs a URL naming a database and an archive's key; --clean needs
// the database's name again. No error shows the URL or its password.
func TestParsePostgresTarget(t *testing.T) {
	const pw = "s3cr%65t-pw"
	to := "postgres://u:" + pw + "@db.example:5432/scratch"
	got, err := ParsePostgresTarget("a/b.dump.age", to, "", false)
	if err != nil || got.URL != to || got.Host != "db.example" || got.Database != "scratch" ||
		len(got.Secrets) != 2 || got.Secrets[0] != to || got.Secrets[1] != "s3cret-pw" {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := ParsePostgresTarget("a/b.dump", to, "scratch", true); err != nil {
		t.Errorf("--clean --confirm scratch: %v", err)
	}
	for _, tt := range []struct {
		from, to, confirm string
		clean             bool
		want              string
	}{
		{"a/b.dump", "postgres://u:s3cret-pw@db.example:port/scratch", "", false, "--to is not a valid database URL ("},
		{"a/b.dump", "postgres://u:s3cret-pw@db.example:5432", "", false, "--to names no database"},
		{"a/b.dump", "postgres://u:s3cret-pw@db.example:5432/a/b", "", false, "--to names no database"},
		{"", to, "", false, "--from KEY is required"},
		{"a/b.json", to, "", false, "--from a/b.json is not an archive's key"},
		{"a/b.dump", to, "", true, "--clean drops the archive's objects from database scratch and restores them, replacing their data; to proceed, add --confirm scratch"},
	} {
		_, err := ParsePostgresTarget(tt.from, tt.to, tt.confirm, tt.clean)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %s", tt, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(err.Error(), pw) {
			t.Errorf("%+v: the error shows the password: %v", tt, err)
		}
	}
}
