package heroku

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The add-on calls against the simulator: create, poll to provisioned, read the URL, list,
// delete (twice: the second finds it gone, which is no error).
func TestSimAddons(t *testing.T) {
	pg := testenv.StartPostgres(t)
	sim := herokusim.New(herokusim.Options{Token: key, PgDump: pg.Bin("pg_dump"), PostgresAdmin: pg.DSN("postgres"), ProvisionDelay: 200 * time.Millisecond})
	sim.AddApp("ops")
	platform, data := herokusim.Serve(t, sim)
	c := New(Options{APIKey: key, PlatformURL: platform, DataURL: data, UserAgent: userAgent, RetryBudget: 5 * time.Second})
	ctx := context.Background()

	a, err := c.CreateAddon(ctx, "ops", "heroku-postgresql:essential-0", "pgoffsite-drill-test")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != AddonProvisioning || a.Name != "pgoffsite-drill-test" || a.Plan != "heroku-postgresql:essential-0" || a.CreatedAt.IsZero() {
		t.Errorf("created %+v", a)
	}
	if _, err := c.CreateAddon(ctx, "ops", "heroku-postgresql:essential-0", "pgoffsite-drill-test"); err == nil || !strings.Contains(err.Error(), "pgoffsite-drill-test") {
		t.Errorf("a name taken: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); a.State != AddonProvisioned && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if a, err = c.Addon(ctx, "ops", a.ID); err != nil {
			t.Fatal(err)
		}
	}
	if a.State != AddonProvisioned || len(a.ConfigVars) != 1 {
		t.Fatalf("after provisioning %+v", a)
	}
	u, err := c.AddonURL(ctx, "ops", a)
	if err != nil || !strings.HasPrefix(u.Reveal(), "postgres://") {
		t.Fatalf("URL: %v", err)
	}
	if list, err := c.Addons(ctx, "ops"); err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("list %+v %v", list, err)
	}
	if err := c.DeleteAddon(ctx, "ops", a.Name); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAddon(ctx, "ops", a.Name); err != nil {
		t.Errorf("deleting it again: %v", err)
	}
	if _, err := c.Addon(ctx, "ops", a.ID); !IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
}

func TestPostgresPlans(t *testing.T) {
	p, ok := FindPostgresPlan("essential-0")
	if !ok || p.Name != "heroku-postgresql:essential-0" || p.StorageBytes != 1<<30 {
		t.Fatalf("%+v %v", p, ok)
	}
	if got := p.CostUSD(72); got < 0.4999 || got > 0.5001 { // a tenth of the month
		t.Errorf("72 h of $5/month: $%v", got)
	}
	if got := p.CostUSD(10000); got != 5 {
		t.Errorf("more than a month: $%v, want the monthly price", got)
	}
	if _, ok := FindPostgresPlan("mini"); ok {
		t.Error("mini (a retired plan) found")
	}
}

// ForkAddon sends what `heroku addons:create heroku-postgresql:PLAN -- --fork APP::DATABASE_URL`
// sends (config.fork), and the simulator's fork provisions as any add-on; a fork of an Essential
// database is refused with Heroku's message, naming the fork.
func TestSimForkAddon(t *testing.T) {
	pg := testenv.StartPostgres(t)
	sim := herokusim.New(herokusim.Options{Token: key, PgDump: pg.Bin("pg_dump"), PostgresAdmin: pg.DSN("postgres"), ProvisionDelay: 200 * time.Millisecond})
	sim.AddApp("ops")
	sim.AddApp("shop")
	_, dsn := pg.CreateDB(t, "shop")
	sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", dsn)
	sim.AddDatabase("shop", "TINY", "heroku-postgresql:essential-0", dsn)
	platform, data := herokusim.Serve(t, sim)
	c := New(Options{APIKey: key, PlatformURL: platform, DataURL: data, UserAgent: userAgent, RetryBudget: 5 * time.Second})
	ctx := context.Background()

	db, err := c.Resolve(ctx, "shop", "DATABASE_URL")
	if err != nil {
		t.Fatal(err)
	}
	if ForkOf(db) != "shop::DATABASE_URL" {
		t.Errorf("ForkOf %q", ForkOf(db))
	}
	a, err := c.ForkAddon(ctx, "ops", "heroku-postgresql:standard-0", "pgoffsite-fork-test", db)
	if err != nil || a.State != AddonProvisioning || a.Name != "pgoffsite-fork-test" {
		t.Fatalf("fork %+v %v", a, err)
	}
	if list := sim.Addons("ops"); len(list) != 1 || list[0].ForkOf != db.AddonName {
		t.Errorf("the simulator's add-ons %+v, want a fork of %s", list, db.AddonName)
	}
	tiny, err := c.Resolve(ctx, "shop", "TINY")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ForkAddon(ctx, "ops", "heroku-postgresql:standard-0", "pgoffsite-fork-tiny", tiny); err == nil ||
		!strings.Contains(err.Error(), "Essential") || !strings.Contains(err.Error(), "a fork of shop::TINY_URL") {
		t.Errorf("a fork of an Essential database: %v", err)
	}
	if n := sim.CreatedAddons(); n != 1 {
		t.Errorf("%d add-ons created, want 1", n)
	}
}

func TestCanFork(t *testing.T) {
	for plan, want := range map[string]bool{"heroku-postgresql:essential-0": false, "essential-2": false, "heroku-postgresql:mini": false,
		"hobby-dev": false, "heroku-postgresql:standard-0": true, "premium-2": true, "heroku-postgresql:private-0": true} {
		if CanFork(plan) != want {
			t.Errorf("CanFork(%s) = %v", plan, !want)
		}
	}
}

// Pace stretches a poll's wait in proportion to how low the account's rate-limit budget is, at
// most ten times; unknown or plenty leaves it.
func TestPace(t *testing.T) {
	c := New(Options{APIKey: key, PlatformURL: "https://api.heroku.com", DataURL: "https://api.data.heroku.com", UserAgent: userAgent})
	for remaining, want := range map[int64]time.Duration{-1: time.Second, 4500: time.Second, 1000: time.Second, 500: 3 * time.Second, 100: 10 * time.Second, 0: 10 * time.Second} {
		c.remaining.Store(remaining)
		if got := c.Pace(time.Second); got != want {
			t.Errorf("RateLimit-Remaining %d: %s, want %s", remaining, got, want)
		}
	}
}
