package heroku

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// attachment is an add-on attachment as the resolve action answers with Accept-Inclusion
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

// Resolve finds the Postgres add-on that database names on app, the way the Heroku CLI does
// (heroku-api.md §1): the resolve action, Postgres plans only, unnamespaced attachments first,
// and a fallback through the app's attachments when Heroku does not know the name.
func (c *Client) Resolve(ctx context.Context, app, database string) (Database, error) {
	db, err := c.resolve(ctx, app, database)
	if err != nil {
		return db, fmt.Errorf("heroku: resolve app=%s database=%s: %w", app, database, err)
	}
	return db, nil
}

func (c *Client) resolve(ctx context.Context, app, database string) (Database, error) {
	var found []attachment
	err := c.sdk.Post(idempotent(ctx), &found, "/actions/addon-attachments/resolve",
		map[string]string{"addon_attachment": database, "app": app})
	err = stripURL(err)
	var att attachment
	switch {
	case IsNotFound(err):
		att, err = c.fallback(ctx, app, database)
		if err != nil {
			return Database{}, err
		}
	case err != nil:
		return Database{}, err
	default:
		att, err = pick(app, database, found)
		if err != nil {
			return Database{}, err
		}
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
		db.BillingApp = att.App.Name
	}
	db.SourceNames, err = c.sourceNames(ctx, db, att)
	return db, err
}

// pick applies the CLI's filtering to the resolve answer.
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
	switch {
	case len(pg) == 0:
		return attachment{}, fmt.Errorf("%s on %s is not a Heroku Postgres database", database, app)
	case len(pg) == 1:
		return pg[0], nil
	}
	same := true
	for _, a := range pg[1:] {
		same = same && a.Addon.ID == pg[0].Addon.ID
	}
	if same {
		return pg[0], nil
	}
	names := make([]string, len(pg))
	for i, a := range pg {
		names[i] = a.App.Name + "::" + a.Name + " (" + a.Addon.Name + ")"
	}
	return attachment{}, fmt.Errorf("%s is ambiguous on %s: it matches %s; name one of them in BACKUP_TARGETS", database, app, strings.Join(names, ", "))
}

// fallback matches database against the app's Postgres attachments by config var name.
func (c *Client) fallback(ctx context.Context, app, database string) (attachment, error) {
	var atts []attachment
	if err := stripURL(c.sdk.Get(ctx, &atts, "/apps/"+app+"/addon-attachments", nil, nil)); err != nil {
		return attachment{}, err
	}
	var vars map[string]*string
	if err := stripURL(c.platform.Get(ctx, &vars, "/apps/"+app+"/config-vars", nil, nil)); err != nil {
		return attachment{}, err
	}
	want := strings.ToUpper(database)
	if !strings.HasSuffix(want, "_URL") {
		want += "_URL"
	}
	var valid []string
	for _, a := range atts {
		if !a.isPostgres() {
			continue
		}
		name := strings.ToUpper(a.Name) + "_URL"
		if _, ok := vars[name]; ok || len(vars) == 0 {
			valid = append(valid, name)
		}
		if name == want {
			return a, nil
		}
	}
	if len(valid) == 0 {
		return attachment{}, fmt.Errorf("%s has no databases", app)
	}
	sort.Strings(valid)
	return attachment{}, fmt.Errorf("Unknown database: %s. Valid options are: %s", database, strings.Join(valid, ", "))
}

// sourceNames are the add-on's attachment names on its billing app: what the Data API writes as
// a backup's from_name, and so what tells this database's backups from the app's others.
func (c *Client) sourceNames(ctx context.Context, db Database, att attachment) ([]string, error) {
	var atts []attachment
	if err := stripURL(c.platform.Get(ctx, &atts, "/addons/"+db.AddonID+"/addon-attachments", nil, nil)); err != nil {
		return nil, fmt.Errorf("list attachments of %s: %w", db.AddonName, err)
	}
	var names []string
	for _, a := range atts {
		if a.App.Name == db.BillingApp {
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
		return "", fmt.Errorf("heroku: account: %w", stripURL(err))
	}
	return acct.Email, nil
}

// KeyExpiry tells whether the API key expires, from the account's OAuth authorizations: keys
// from `heroku login` expire, keys from `heroku authorizations:create` need not. known is false
// when the key is not among the listed authorizations.
func (c *Client) KeyExpiry(ctx context.Context) (expiresIn time.Duration, expires, known bool, err error) {
	auths, err := c.platform.OAuthAuthorizationList(ctx, nil)
	if err != nil {
		return 0, false, false, fmt.Errorf("heroku: list authorizations: %w", stripURL(err))
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
