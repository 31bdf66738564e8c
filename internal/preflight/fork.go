package preflight

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/forksource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/throwaway"
)

// ForkAPI is what the check of a fork capture asks the Platform API.
type ForkAPI interface {
	Resolve(ctx context.Context, app, database string) (heroku.Database, error)
	Addons(ctx context.Context, app string) ([]heroku.Addon, error)
}

// Fork says what each backup will fork for the target app:database, onto which plan on the
// pgoffsite app, and what an hour of it costs; it fails where Heroku cannot fork. It returns the
// database the target resolved to; false when it did not, or cannot be forked.
func Fork(ctx context.Context, r Reporter, api ForkAPI, pgoffsiteApp, forkPlan, app, database string) (heroku.Database, bool) {
	target := app + ":" + database
	db, err := api.Resolve(ctx, app, database)
	if err != nil {
		r.Fail("%s: %v", target, err)
		return db, false
	}
	plan := forkPlan
	if plan == "" {
		plan = db.Plan
	}
	if err := forksource.Refusal(db, plan); err != nil {
		r.Fail("%s: BACKUP_METHOD=fork: %v", target, err)
		return db, false
	}
	price := "its price is unknown to pgoffsite (see https://elements.heroku.com/addons/heroku-postgresql)"
	if p, ok := heroku.FindPostgresPlan(plan); ok {
		price = fmt.Sprintf("about $%.4f an hour at list price ($%.0f a month, billed by the second)", p.CostUSD(1), p.MonthlyUSD)
	}
	r.OK("%s: each backup forks add-on %s (%s) as a %s add-on on %s, dumps the fork and deletes it: the fork is billed while it lives, %s; Heroku takes minutes to hours to make a fork, depending on the database's size",
		target, db.AddonName, db.Plan, plan, pgoffsiteApp, price)
	return db, true
}

// ForkLeftovers reports the forks on the pgoffsite app: a killed run's, which the next backup
// removes once older than timeout (FORK_TIMEOUT), or a running backup's.
func ForkLeftovers(ctx context.Context, r Reporter, api ForkAPI, pgoffsiteApp string, timeout time.Duration) {
	list, err := api.Addons(ctx, pgoffsiteApp)
	if err != nil {
		r.Warn("forks: cannot list the add-ons of %s (HEROKU_APP_NAME): %v", pgoffsiteApp, err)
		return
	}
	n := 0
	for _, a := range list {
		if !strings.HasPrefix(a.Name, forksource.Prefix) {
			continue
		}
		n++
		age := time.Since(a.CreatedAt).Round(time.Second)
		r.Warn("forks: %s (%s) is on %s, %s old: a running backup's fork, or a killed one's, billed until removed; the next backup removes it once older than FORK_TIMEOUT %s", a.Name, a.Plan, pgoffsiteApp, age, timeout)
		r.Fix("remove it now, if no backup is running: %s", throwaway.RemoveCommand(a.Name, pgoffsiteApp))
	}
	if n == 0 {
		r.OK("forks: none on %s", pgoffsiteApp)
	}
}
