package bucket

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// Every transition leaves the archive in its tier at least the tier's minimum storage duration,
// so that expiry never costs an early-deletion fee; a class kept too briefly stays in STANDARD,
// and says why.
func TestRetentionPlanMinimumDurations(t *testing.T) {
	p, err := retention.Parse("daily=7d weekly=8w monthly=3m yearly=6m")
	if err != nil {
		t.Fatal(err)
	}
	plans := RetentionPlan(p, false)
	got := map[retention.Class]ClassPlan{}
	for _, cp := range plans {
		got[cp.Class] = cp
		if cp.Tier != "" && cp.ExpireDays-cp.TransitionDays < minDays(cp.Tier) {
			t.Errorf("%s: %d days in %s, under its minimum", cp.Class, cp.ExpireDays-cp.TransitionDays, cp.Tier)
		}
	}
	// 56 days: 26 in STANDARD_IA, under its 30; 93: 63 in GLACIER, under 90; 186: 156 in
	// DEEP_ARCHIVE, under 180.
	for _, c := range []retention.Class{retention.Weekly, retention.Monthly, retention.Yearly} {
		if cp := got[c]; cp.Tier != "" || !strings.Contains(cp.String(), "early-deletion fee") {
			t.Errorf("%s kept %d days: %s", c, cp.ExpireDays, cp)
		}
	}
	long, _ := retention.Parse("daily=7d weekly=9w monthly=4m yearly=7m")
	for _, cp := range RetentionPlan(long, false) {
		if want := classTier[cp.Class]; cp.Tier != want {
			t.Errorf("%s kept %d days: %s, want a move to %q", cp.Class, cp.ExpireDays, cp, want)
		}
	}
	for _, cp := range RetentionPlan(p, true) {
		if cp.Tier != "" {
			t.Errorf("transitions off, yet %s moves to %s", cp.Class, cp.Tier)
		}
	}
}

func TestEstimateCost(t *testing.T) {
	p, _ := retention.Parse("daily=35d weekly=13w monthly=25m yearly=7y")
	costs := EstimateCost(RetentionPlan(p, false), 5<<30)
	n := map[retention.Class]float64{}
	for _, c := range costs {
		n[c.Plan.Class] = c.Archives
	}
	// 35 dailies less the weeks' firsts; 13 weeklies less the months'; 25 monthlies less the
	// years'; 7 yearlies.
	for c, want := range map[retention.Class]float64{retention.Daily: 30, retention.Weekly: 10, retention.Monthly: 24, retention.Yearly: 7} {
		if d := n[c] - want; d < -1 || d > 1 {
			t.Errorf("%s: about %.1f archives, want about %.0f", c, n[c], want)
		}
	}
	out := FormatCost(costs, 5<<30)
	for _, want := range []string{"one 5.00 GiB archive", "taken " + PricesTaken, "daily", "yearly", "DEEP_ARCHIVE", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("estimate lacks %q:\n%s", want, out)
		}
	}
}
