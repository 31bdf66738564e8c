package drill

import (
	"strings"
	"testing"
)

// The pgoffsite app's name must be set, and be a Heroku app name; each problem says how to fix it.
func TestApp(t *testing.T) {
	if app, err := App("my-pgoffsite"); err != nil || app != "my-pgoffsite" {
		t.Errorf("my-pgoffsite: %q %v", app, err)
	}
	for name, want := range map[string]string{
		"":            "  HEROKU_APP_NAME: not set: pgoffsite drill provisions its throwaway database on the pgoffsite app, which dyno metadata names: run `heroku labs:enable runtime-dyno-metadata -a APP`",
		"My_App":      `  HEROKU_APP_NAME: "My_App" is not a Heroku app name: set it to the pgoffsite app's name`,
		"ab":          `  HEROKU_APP_NAME: "ab" is not a Heroku app name`,
		"1-backups":   `  HEROKU_APP_NAME: "1-backups" is not a Heroku app name`,
		"shop;rm -rf": `  HEROKU_APP_NAME: "shop;rm -rf" is not a Heroku app name`,
	} {
		if app, err := App(name); err == nil || app != "" || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %q %v, want %s", name, app, err, want)
		}
	}
}
