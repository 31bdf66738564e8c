package heroku

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestResolveKeepsPostgresPrefersUnnamespacedAndFindsBillingApp(t *testing.T) {
	f, c := newFake(t)
	ns := "credential:analyst"
	f.on("POST /actions/addon-attachments/resolve", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		if len(body) != 2 || body["addon_attachment"] != "SHARED_DB" || body["app"] != "web" {
			t.Errorf("resolve body %v", body)
		}
		writeJSON(w, 200, []any{
			att("web", "SHARED_DB", "r1", "redis-x-1", "web", "heroku-redis:mini", nil),
			att("web", "SHARED_DB", "a2", "postgresql-y-2", "web", pgPlan, &ns),
			att("web", "SHARED_DB", "a1", "postgresql-x-1", "core", pgPlan, nil),
		})
	})
	f.json("GET /addons/a1/addon-attachments", 200, []any{
		att("core", "DATABASE", "a1", "postgresql-x-1", "core", pgPlan, nil),
		att("core", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "core", pgPlan, nil),
		att("web", "SHARED_DB", "a1", "postgresql-x-1", "core", pgPlan, nil),
	})
	db, err := c.Resolve(context.Background(), "web", "SHARED_DB")
	if err != nil {
		t.Fatal(err)
	}
	want := Database{App: "web", Attachment: "SHARED_DB", AddonID: "a1", AddonName: "postgresql-x-1", BillingApp: "core",
		Plan: pgPlan, SourceNames: []string{"DATABASE", "HEROKU_POSTGRESQL_PINK"}}
	if db.App != want.App || db.Attachment != want.Attachment || db.AddonID != want.AddonID || db.AddonName != want.AddonName ||
		db.BillingApp != want.BillingApp || db.Plan != want.Plan || !slices.Equal(db.SourceNames, want.SourceNames) {
		t.Errorf("resolved\n %+v\nwant\n %+v", db, want)
	}
}

func TestResolveSeveralAttachmentsOfOneAddonAreOneDatabase(t *testing.T) {
	f, c := newFake(t)
	// An add-on name matches every attachment of the add-on.
	f.json("POST /actions/addon-attachments/resolve", 200, []any{
		att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", pgPlan, nil),
		att("shop", "DATABASE", "a1", "postgresql-x-1", "shop", pgPlan, nil),
	})
	f.json("GET /addons/a1/addon-attachments", 200, []any{
		att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", pgPlan, nil),
		att("shop", "DATABASE", "a1", "postgresql-x-1", "shop", pgPlan, nil),
	})
	db, err := c.Resolve(context.Background(), "shop", "postgresql-x-1")
	if err != nil || db.Attachment != "HEROKU_POSTGRESQL_PINK" || db.AddonID != "a1" || len(db.SourceNames) != 2 {
		t.Fatalf("resolved %+v, %v; want the first attachment of a1", db, err)
	}
}

func TestResolveAmbiguousListsTheDatabases(t *testing.T) {
	f, c := newFake(t)
	f.json("POST /actions/addon-attachments/resolve", 200, []any{
		att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", pgPlan, nil),
		att("shop", "HEROKU_POSTGRESQL_BLUE", "a2", "postgresql-y-2", "shop", pgPlan, nil),
	})
	_, err := c.Resolve(context.Background(), "shop", "heroku-postgresql")
	if err == nil {
		t.Fatal("two add-ons resolved to one database")
	}
	for _, s := range []string{"heroku: resolve app=shop database=heroku-postgresql: ", "ambiguous",
		"shop::HEROKU_POSTGRESQL_PINK (postgresql-x-1)", "shop::HEROKU_POSTGRESQL_BLUE (postgresql-y-2)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
}

// fallbackFake answers the resolve action with 404 and lists shop's attachments and config vars.
func fallbackFake(t *testing.T) (*fake, *Client) {
	f, c := newFake(t)
	f.json("POST /actions/addon-attachments/resolve", 404, map[string]string{"id": "not_found", "message": "Couldn't find that add on attachment."})
	f.json("GET /apps/shop/addon-attachments", 200, []any{
		att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", pgPlan, nil),
		att("shop", "REDIS", "r1", "redis-x-1", "shop", "heroku-redis:mini", nil),
		att("shop", "HEROKU_POSTGRESQL_BLUE", "a2", "postgresql-y-2", "shop", pgPlan, nil),
	})
	// DATABASE_URL is a plain config var holding PINK's URL: no DATABASE attachment exists.
	f.json("GET /apps/shop/config-vars", 200, map[string]any{"DATABASE_URL": dbURL, "HEROKU_POSTGRESQL_PINK_URL": dbURL,
		"HEROKU_POSTGRESQL_BLUE_URL": "postgres://b:bluepw@h/b", "REDIS_URL": "redis://:redispw@h:6379", "EMPTY": nil})
	f.json("GET /addons/a1/addon-attachments", 200, []any{att("shop", "HEROKU_POSTGRESQL_PINK", "a1", "postgresql-x-1", "shop", pgPlan, nil)})
	f.json("GET /addons/a2/addon-attachments", 200, []any{att("shop", "HEROKU_POSTGRESQL_BLUE", "a2", "postgresql-y-2", "shop", pgPlan, nil)})
	return f, c
}

func TestResolveFallbackByNameAndByValue(t *testing.T) {
	_, c := fallbackFake(t)
	for arg, want := range map[string]string{"HEROKU_POSTGRESQL_BLUE": "a2", "heroku_postgresql_blue_url": "a2", "DATABASE_URL": "a1", "DATABASE": "a1"} {
		db, err := c.Resolve(context.Background(), "shop", arg)
		if err != nil || db.AddonID != want || db.BillingApp != "shop" {
			t.Errorf("%s: resolved %+v, %v; want add-on %s", arg, db, err, want)
		}
	}
}

func TestResolveFallbackUnknownNamesTheValidOptions(t *testing.T) {
	_, c := fallbackFake(t)
	_, err := c.Resolve(context.Background(), "shop", "HEROKU_POSTGRESQL_NOPE")
	want := "Unknown database: HEROKU_POSTGRESQL_NOPE_URL. Valid options are: HEROKU_POSTGRESQL_PINK_URL, HEROKU_POSTGRESQL_BLUE_URL"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to contain %q", err, want)
	}
	for _, secret := range []string{"secretpw", "bluepw", "redispw"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("a config var value leaked into the error: %v", err)
		}
	}
}

func TestResolveNonPostgresAnswerFallsBackLikeTheCLI(t *testing.T) {
	f, c := fallbackFake(t)
	f.json("POST /actions/addon-attachments/resolve", 200, []any{att("shop", "REDIS", "r1", "redis-x-1", "shop", "heroku-redis:mini", nil)})
	_, err := c.Resolve(context.Background(), "shop", "REDIS")
	if err == nil || !strings.Contains(err.Error(), "Unknown database: REDIS_URL. Valid options are: HEROKU_POSTGRESQL_PINK_URL, HEROKU_POSTGRESQL_BLUE_URL") {
		t.Fatalf("a Redis add-on: err = %v", err)
	}
}

func TestResolveFallbackOtherAppAndNoDatabases(t *testing.T) {
	f, c := fallbackFake(t)
	f.json("GET /apps/core/addon-attachments", 200, []any{att("core", "DATABASE", "c1", "postgresql-c-1", "core", pgPlan, nil)})
	f.json("GET /apps/core/config-vars", 200, map[string]string{"DATABASE_URL": dbURL})
	f.json("GET /addons/c1/addon-attachments", 200, []any{att("core", "DATABASE", "c1", "postgresql-c-1", "core", pgPlan, nil)})
	db, err := c.Resolve(context.Background(), "shop", "core::DATABASE_URL")
	if err != nil || db.AddonID != "c1" || db.BillingApp != "core" || db.App != "shop" {
		t.Fatalf("core::DATABASE_URL: %+v, %v", db, err)
	}

	f.json("GET /apps/shop/addon-attachments", 200, []any{att("shop", "REDIS", "r1", "redis-x-1", "shop", "heroku-redis:mini", nil)})
	_, err = c.Resolve(context.Background(), "shop", "DATABASE_URL")
	if err == nil || !strings.Contains(err.Error(), "shop has no databases") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveUnknownApp(t *testing.T) {
	f, c := newFake(t)
	f.json("POST /actions/addon-attachments/resolve", 404, map[string]string{"id": "not_found", "message": "Couldn't find that app."})
	f.json("GET /apps/nope/addon-attachments", 404, map[string]string{"id": "not_found", "message": "Couldn't find that app."})
	_, err := c.Resolve(context.Background(), "nope", "DATABASE_URL")
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "404 not found: Couldn't find that app.") {
		t.Fatalf("err = %v", err)
	}
}
