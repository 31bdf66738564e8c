package heroku

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	hk "github.com/heroku/heroku-go/v5"
)

// attachment is an add-on attachment as Heroku answers with Accept-Inclusion: addon:plan,config_vars
// (heroku-go's struct lacks config_vars and addon.plan).
type attachment struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Namespace  *string  `json:"namespace"`
	ConfigVars []string `json:"config_vars"`
	App        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"app"`
	Addon struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		App  struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"app"`
		Plan struct {
			Name string `json:"name"`
		} `json:"plan"`
	} `json:"addon"`
}

func (a attachment) isPostgres() bool {
	return strings.HasPrefix(a.Addon.Plan.Name, "heroku-postgresql:")
}

// vars are the config var names the attachment sets, e.g. HEROKU_POSTGRESQL_PINK_URL.
func (a attachment) vars() []string {
	if len(a.ConfigVars) > 0 {
		return a.ConfigVars
	}
	return []string{strings.ToUpper(a.Name) + "_URL"}
}

// errNoPostgres: the resolve action named only add-ons that are not Heroku Postgres.
var errNoPostgres = errors.New("not a Heroku Postgres database")

// Resolve finds the Postgres add-on that database names on app, the way the Heroku CLI does
// (heroku-api.md §1). database is DATABASE_URL, DATABASE, HEROKU_POSTGRESQL_PINK(_URL), an
// add-on name, or other-app::DATABASE_URL.
func (c *Client) Resolve(ctx context.Context, app, database string) (Database, error) {
	db, err := c.resolve(ctx, app, database)
	if IsNotFound(err) {
		// What resolve reads last is the app's own attachments: not found, it is the app.
		return Database{}, fmt.Errorf("heroku: resolve app=%s database=%s: %w: HEROKU_API_KEY's account sees no app %s: check the name in BACKUP_TARGETS (`heroku apps` lists the apps an account sees), or have the app's owner add the account (heroku access:add EMAIL -a %s)",
			app, database, err, app, app)
	}
	if err != nil {
		return Database{}, fmt.Errorf("heroku: resolve app=%s database=%s: %w", app, database, err)
	}
	return db, nil
}

func (c *Client) resolve(ctx context.Context, app, database string) (Database, error) {
	var found []attachment
	err := platformErr(c.sdk.Post(idempotent(ctx), &found, "/actions/addon-attachments/resolve",
		map[string]string{"addon_attachment": database, "app": app}))
	var att attachment
	switch {
	case IsNotFound(err):
		// Heroku does not know the name, but the app may still have it as a config var (a
		// DATABASE_URL set to a database's URL): match the app's own attachments.
		att, err = c.fallback(ctx, app, database)
	case err != nil:
	default:
		att, err = pick(app, database, found)
		if errors.Is(err, errNoPostgres) {
			// The CLI asks for heroku-postgresql add-ons only and so gets a 404 here: do what it
			// does then, which lists the valid names.
			att, err = c.fallback(ctx, app, database)
		}
	}
	if err != nil {
		return Database{}, err
	}
	db := Database{
		App:        app,
		Attachment: att.Name,
		AddonID:    att.Addon.ID,
		AddonName:  att.Addon.Name,
		BillingApp: att.Addon.App.Name,
		Plan:       att.Addon.Plan.Name,
	}
	if db.BillingApp == "" {
		db.BillingApp = att.App.Name // unverified whether Heroku ever omits it; the attaching app is the best guess
	}
	if db.AddonID == "" || db.BillingApp == "" {
		return Database{}, fmt.Errorf("Heroku's answer names no add-on id or billing app for %s", att.Name)
	}
	db.SourceNames, err = c.sourceNames(ctx, db, att)
	return db, err
}

// pick applies the CLI's filtering to the attachments a name matched: Postgres add-ons only;
// of several, the unnamespaced ones (a credential attachment shares the name); several on one
// add-on are the same database.
func pick(app, database string, found []attachment) (attachment, error) {
	var pg []attachment
	for _, a := range found {
		if a.isPostgres() {
			pg = append(pg, a)
		}
	}
	if len(pg) > 1 {
		var plain []attachment
		for _, a := range pg {
			if a.Namespace == nil {
				plain = append(plain, a)
			}
		}
		if len(plain) > 0 {
			pg = plain
		}
	}
	if len(pg) == 0 {
		return attachment{}, errNoPostgres
	}
	same := true
	for _, a := range pg[1:] {
		same = same && a.Addon.ID == pg[0].Addon.ID
	}
	if same {
		return pg[0], nil
	}
	var names []string
	for _, a := range pg {
		if n := a.App.Name + "::" + a.Name + " (" + a.Addon.Name + ")"; !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return attachment{}, fmt.Errorf("%s is ambiguous on %s: it names several databases: %s; name one of them instead",
		database, app, strings.Join(names, ", "))
}

// fallback matches database against an app's Postgres attachments: by config var name, then,
// as the CLI does, by value (DATABASE_URL holding the same URL as HEROKU_POSTGRESQL_PINK_URL).
// Values are compared, never shown.
func (c *Client) fallback(ctx context.Context, app, database string) (attachment, error) {
	name := database
	if other, n, ok := strings.Cut(database, "::"); ok {
		app, name = other, n
	}
	want := name // shown as given, with _URL, as the CLI does
	if !strings.HasSuffix(strings.ToUpper(want), "_URL") {
		want += "_URL"
	}
	all, err := listAll[attachment](ctx, c.sdkLists, appURL(app)+"/addon-attachments", idPages)
	if err != nil {
		return attachment{}, err
	}
	var pg []attachment
	for _, a := range all {
		if a.isPostgres() {
			pg = append(pg, a)
		}
	}
	if len(pg) == 0 {
		return attachment{}, fmt.Errorf("%s has no databases", app)
	}
	var vars map[string]*string // values may be null
	if err := platformErr(c.platform.Get(ctx, &vars, "/apps/"+url.PathEscape(app)+"/config-vars", nil, nil)); err != nil {
		return attachment{}, err
	}
	var byName, byValue []attachment
	for _, a := range pg {
		for _, v := range a.vars() {
			if strings.EqualFold(v, want) {
				byName = append(byName, a)
			} else if w, ok := vars[strings.ToUpper(want)]; ok && w != nil && *w != "" && vars[v] != nil && *vars[v] == *w {
				byValue = append(byValue, a)
			}
		}
	}
	matches := byName
	if len(matches) == 0 {
		matches = byValue
	}
	if len(matches) == 0 {
		var valid []string
		for _, a := range pg {
			if v := a.vars()[0]; !slices.Contains(valid, v) {
				valid = append(valid, v)
			}
		}
		return attachment{}, fmt.Errorf("Unknown database: %s. Valid options are: %s", want, strings.Join(valid, ", "))
	}
	return pick(app, database, matches)
}

// sourceNames are the add-on's attachment names on its billing app: what the Data API writes as
// a backup's from_name, and so what tells this database's backups from the app's others.
func (c *Client) sourceNames(ctx context.Context, db Database, att attachment) ([]string, error) {
	atts, err := listAll[attachment](ctx, c.sdkLists, "/addons/"+url.PathEscape(db.AddonID)+"/addon-attachments", idPages)
	if err != nil {
		return nil, fmt.Errorf("list the attachments of %s: %w", db.AddonName, err)
	}
	var names []string
	for _, a := range atts {
		if a.App.Name == db.BillingApp && !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 && att.App.Name == db.BillingApp {
		names = []string{att.Name}
	}
	return names, nil
}

// Account returns the email of the account the API key belongs to.
func (c *Client) Account(ctx context.Context) (string, error) {
	acct, err := c.platform.AccountInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("heroku: account: %w", platformErr(err))
	}
	return acct.Email, nil
}

// KeyExpiry tells whether the API key expires, from the account's OAuth authorizations: keys
// from `heroku login` expire, keys from `heroku authorizations:create` need not. known is false
// when the key is not among the listed authorizations.
func (c *Client) KeyExpiry(ctx context.Context) (expiresIn time.Duration, expires, known bool, err error) {
	auths, err := listAll[hk.OAuthAuthorization](ctx, c.lists, "/oauth/authorizations", idPages)
	if err != nil {
		return 0, false, false, fmt.Errorf("heroku: list authorizations: %w", err)
	}
	for _, a := range auths {
		if a.AccessToken == nil || a.AccessToken.Token != c.o.APIKey {
			continue
		}
		if a.AccessToken.ExpiresIn == nil {
			return 0, false, true, nil
		}
		return time.Duration(*a.AccessToken.ExpiresIn) * time.Second, true, true, nil
	}
	return 0, false, false, nil
}

// DatabaseURL is the connection URL of db: the config var its attachment sets on db.App (for a
// pg_dump of the database itself). It is a Secret: never logged.
func (c *Client) DatabaseURL(ctx context.Context, db Database) (Secret, error) {
	var vars map[string]*string // values may be null
	if err := platformErr(c.platform.Get(ctx, &vars, "/apps/"+url.PathEscape(db.App)+"/config-vars", nil, nil)); err != nil {
		return "", fmt.Errorf("heroku: config vars app=%s: %w", db.App, err)
	}
	name := strings.ToUpper(db.Attachment) + "_URL"
	if v := vars[name]; v != nil && *v != "" {
		return Secret(*v), nil
	}
	return "", fmt.Errorf("heroku: config vars app=%s: %s is not set (the database's URL)", db.App, name)
}
