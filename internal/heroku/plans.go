package heroku

import "strings"

// PostgresPlan is a Heroku Postgres plan's storage limit and list price, for restore drills:
// what fits, and what holding one for a few minutes costs.
type PostgresPlan struct {
	Name         string  // e.g. heroku-postgresql:essential-0
	StorageBytes int64   // the plan's storage limit
	MonthlyUSD   float64 // list price per month; Heroku bills by the second up to it
}

const gb = int64(1) << 30

// PostgresPlans are Heroku's published plans (list prices in USD, Common Runtime; check
// https://elements.heroku.com/addons/heroku-postgresql for today's). A plan not listed here
// cannot be used for drills: its storage is unknown.
var PostgresPlans = []PostgresPlan{
	{"heroku-postgresql:essential-0", 1 * gb, 5},
	{"heroku-postgresql:essential-1", 10 * gb, 9},
	{"heroku-postgresql:essential-2", 32 * gb, 20},
	{"heroku-postgresql:standard-0", 64 * gb, 50},
	{"heroku-postgresql:standard-2", 256 * gb, 200},
	{"heroku-postgresql:standard-3", 512 * gb, 400},
	{"heroku-postgresql:standard-4", 768 * gb, 750},
	{"heroku-postgresql:standard-5", 1024 * gb, 1400},
	{"heroku-postgresql:standard-6", 1536 * gb, 2000},
	{"heroku-postgresql:premium-0", 64 * gb, 200},
	{"heroku-postgresql:premium-2", 256 * gb, 350},
}

// monthHours is the month Heroku's per-second prices are derived from.
const monthHours = 720

// FindPostgresPlan looks a plan up by its full name or its short one (essential-0).
func FindPostgresPlan(name string) (PostgresPlan, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.Contains(name, ":") {
		name = "heroku-postgresql:" + name
	}
	for _, p := range PostgresPlans {
		if p.Name == name {
			return p, true
		}
	}
	return PostgresPlan{}, false
}

// CanFork tells whether Heroku can fork a database of plan, or make a fork of that plan: not on
// the Essential tier, which has no fork (https://devcenter.heroku.com/articles/heroku-postgres-plans,
// "Fork: No"), nor on the retired plans it replaced (mini, basic, hobby-*); every other tier forks.
func CanFork(plan string) bool {
	short := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(plan)), PostgresPlanPrefix)
	for _, tier := range []string{"essential-", "mini", "basic", "hobby-"} {
		if strings.HasPrefix(short, tier) {
			return false
		}
	}
	return true
}

// CostUSD is what holding the plan for hours costs: its monthly price pro rata, at most a month's.
func (p PostgresPlan) CostUSD(hours float64) float64 {
	return p.MonthlyUSD * min(hours/monthHours, 1)
}
