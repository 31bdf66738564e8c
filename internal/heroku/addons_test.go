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
