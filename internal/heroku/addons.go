package heroku

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	hk "github.com/heroku/heroku-go/v5"
)

// Addon is an add-on as the Platform API describes it (heroku-go's AddOn, the fields pgoffsite
// reads): GET /apps/{app}/addons/{id}.
type Addon struct {
	ID         string
	Name       string
	App        string // the app it belongs to (its billing app)
	Plan       string
	State      string   // provisioning, provisioned or deprovisioned
	ConfigVars []string // the config vars it sets on its app, e.g. HEROKU_POSTGRESQL_PINK_URL
	CreatedAt  time.Time
}

// Add-on states (heroku-go's schema: "state in the add-on's lifecycle").
const (
	AddonProvisioning  = "provisioning"
	AddonProvisioned   = "provisioned"
	AddonDeprovisioned = "deprovisioned"
)

func addonOf(a *hk.AddOn) Addon {
	return Addon{ID: a.ID, Name: a.Name, App: a.App.Name, Plan: a.Plan.Name, State: a.State, ConfigVars: a.ConfigVars, CreatedAt: a.CreatedAt}
}

// CreateAddon provisions an add-on of plan named name on app: POST /apps/{app}/addons. Not
// retried: a second POST could provision a second add-on (and bill it).
func (c *Client) CreateAddon(ctx context.Context, app, plan, name string) (Addon, error) {
	a, err := c.platform.AddOnCreate(ctx, app, hk.AddOnCreateOpts{Plan: plan, Name: &name})
	if err != nil {
		return Addon{}, fmt.Errorf("heroku: create add-on %s (%s) on app=%s: %w", name, plan, app, platformErr(err))
	}
	return addonOf(a), nil
}

// ForkAddon provisions, as an add-on of plan named name on app, a fork of the database db:
// POST /apps/{app}/addons with config {"fork": "APP::ATTACHMENT_URL"}, the body of
// `heroku addons:create heroku-postgresql:PLAN --name NAME -a APP -- --fork APP::ATTACHMENT_URL`
// (the CLI turns the flags after -- into config). Heroku copies db's data into the fork as it
// provisions it. Not retried, as CreateAddon.
func (c *Client) ForkAddon(ctx context.Context, app, plan, name string, db Database) (Addon, error) {
	of := ForkOf(db)
	a, err := c.platform.AddOnCreate(ctx, app, hk.AddOnCreateOpts{Plan: plan, Name: &name, Config: map[string]string{"fork": of}})
	if err != nil {
		return Addon{}, fmt.Errorf("heroku: create add-on %s (%s, a fork of %s) on app=%s: %w", name, plan, of, app, platformErr(err))
	}
	return addonOf(a), nil
}

// ForkOf is how a fork names the database it copies: APP::ATTACHMENT_URL, the form
// `heroku addons:create ... --fork` takes, which resolves on Heroku's side as the attachment does.
func ForkOf(db Database) string {
	return db.App + "::" + strings.TrimSuffix(db.Attachment, "_URL") + "_URL"
}

// Addon reads an add-on's state: GET /apps/{app}/addons/{id or name}.
func (c *Client) Addon(ctx context.Context, app, id string) (Addon, error) {
	a, err := c.platform.AddOnInfoByApp(ctx, app, url.PathEscape(id))
	if err != nil {
		return Addon{}, fmt.Errorf("heroku: add-on %s on app=%s: %w", id, app, platformErr(err))
	}
	return addonOf(a), nil
}

// Addons lists the add-ons of app: GET /apps/{app}/addons.
func (c *Client) Addons(ctx context.Context, app string) ([]Addon, error) {
	list, err := listAll[hk.AddOn](ctx, c.lists, appURL(app)+"/addons", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: list the add-ons of app=%s: %w", app, err)
	}
	out := make([]Addon, len(list))
	for i := range list {
		out[i] = addonOf(&list[i])
	}
	return out, nil
}

// PostgresPlanPrefix starts the plan name of every Heroku Postgres add-on.
const PostgresPlanPrefix = "heroku-postgresql:"

// PostgresAddons lists every Heroku Postgres add-on the key can see, each once whatever the
// apps it is attached to, with the app it belongs to: GET /addons, the account's add-ons on every
// app it can see, over every page — one list, not a call per app.
func (c *Client) PostgresAddons(ctx context.Context) ([]Addon, error) {
	list, err := listAll[hk.AddOn](ctx, c.lists, "/addons", idPages)
	if err != nil {
		return nil, fmt.Errorf("heroku: list the add-ons the key can see: %w", err)
	}
	var out []Addon
	for i := range list {
		if a := addonOf(&list[i]); strings.HasPrefix(a.Plan, PostgresPlanPrefix) && a.State != AddonDeprovisioned {
			out = append(out, a)
		}
	}
	return out, nil
}

// DeleteAddon deprovisions an add-on: DELETE /apps/{app}/addons/{id}. Sending it twice is
// harmless, so it is retried; an add-on already gone (404) counts as deleted.
func (c *Client) DeleteAddon(ctx context.Context, app, id string) error {
	_, err := c.platform.AddOnDelete(idempotent(ctx), url.PathEscape(app), url.PathEscape(id))
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("heroku: delete add-on %s on app=%s: %w", id, app, platformErr(err))
	}
	return nil
}

// AddonURL is the database URL a provisioned Postgres add-on sets on app (the first of its
// config vars ending in _URL), read as the pg_dump source reads a target's. It is a Secret.
func (c *Client) AddonURL(ctx context.Context, app string, a Addon) (Secret, error) {
	for _, v := range a.ConfigVars {
		if strings.HasSuffix(v, "_URL") {
			return c.DatabaseURL(ctx, Database{App: app, Attachment: strings.TrimSuffix(v, "_URL")})
		}
	}
	return "", fmt.Errorf("heroku: add-on %s on app=%s sets no _URL config var (config_vars %v)", a.Name, app, a.ConfigVars)
}
