package drill

import (
	"errors"
	"fmt"
	"regexp"
)

var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)

// App checks the pgoffsite app's name, HEROKU_APP_NAME from dyno metadata: the drill's add-ons
// are made there. Its errors are configuration problems, each naming the variable and its fix.
func App(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("  HEROKU_APP_NAME: not set: pgoffsite drill provisions its throwaway database on the pgoffsite app, which dyno metadata names: run `heroku labs:enable runtime-dyno-metadata -a APP` (APP: the pgoffsite app) and deploy again, or set HEROKU_APP_NAME to the app's name")
	case !appNameRE.MatchString(name):
		return "", fmt.Errorf("  HEROKU_APP_NAME: %q is not a Heroku app name: set it to the pgoffsite app's name (dyno metadata sets it: heroku labs:enable runtime-dyno-metadata -a APP)", name)
	}
	return name, nil
}
