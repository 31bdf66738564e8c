package retention

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	p, err := Parse("daily=35d weekly=13w monthly=25m yearly=7y")
	if err != nil {
		t.Fatal(err)
	}
	want := map[Class]int{Daily: 35, Weekly: 91, Monthly: 775, Yearly: 2562}
	for c, days := range want {
		k, ok := p.Keep(c)
		if !ok || k.Days() != days {
			t.Errorf("%s: %v %v, want %d days", c, k, ok, days)
		}
	}
	if p.String() != "daily=35d weekly=13w monthly=25m yearly=7y" {
		t.Errorf("String: %q", p.String())
	}
	if q, err := Parse("  "); err != nil || q.Set() {
		t.Errorf("empty: %v %v", q, err)
	}
	if q, err := Parse("daily=7d,monthly=12m"); err != nil || len(q.Listed()) != 2 {
		t.Errorf("commas, classes left out: %v %v", q, err)
	}
	// Line breaks and commas with spaces separate as spaces do: envlist's one rule.
	if q, err := Parse("daily=7d,\n weekly=5w ,monthly=12m"); err != nil || len(q.Listed()) != 3 {
		t.Errorf("line breaks and commas: %v %v", q, err)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"daily=35d daily=7d":       "daily is given twice",
		"daily=35":                 "unit",
		"daily=35x":                `unit "x" is not one`,
		"daily=35days":             `unit "days" is not one: write 35d`,
		"daily=5h":                 `unit "h" is not one: want d (days)`,
		"daily=-5d":                "a number and a unit",
		"daily=35d\nweekly=13x":    `unit "x"`,
		"daily=d":                  "a number and a unit",
		"daily=0d":                 "whole number",
		"hourly=3d daily=7d":       "unknown class",
		"daily":                    "CLASS=DURATION",
		"weekly=4w":                "daily is missing",
		"daily=35d weekly=2w":      "keeps archives for less than daily",
		"daily=7d yearly=200y":     "100 years",
		"daily=7d monthly=1m x=2d": "unknown class",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "RETENTION") {
			t.Errorf("Parse(%q) = %v, want an error naming RETENTION with %q", in, err, want)
		}
	}
}

func TestPeriodInZone(t *testing.T) {
	akl, err := LoadZone("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	// 11:00 UTC on Saturday 2026-10-31 is Sunday 2026-11-01 00:00 in Auckland (NZDT, +13).
	at := time.Date(2026, 10, 31, 11, 0, 0, 0, time.UTC)
	for c, want := range map[Class]string{Daily: "2026-11-01", Weekly: "2026-W44", Monthly: "2026-11", Yearly: "2026"} {
		if got := Period(c, at, akl); got != want {
			t.Errorf("%s in Auckland: %s, want %s", c, got, want)
		}
	}
	if got := Period(Monthly, at, time.UTC); got != "2026-10" {
		t.Errorf("monthly in UTC: %s", got)
	}
	// ISO weeks: 2027-01-01 is a Friday in week 53 of 2026.
	if got := Period(Weekly, time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), time.UTC); got != "2026-W53" {
		t.Errorf("ISO week of 2027-01-01: %s", got)
	}
	if _, err := LoadZone("Mars/Olympus"); err == nil || !strings.Contains(err.Error(), ZoneVar) {
		t.Errorf("unknown zone: %v", err)
	}
	if _, err := LoadZone("../../etc/passwd"); err == nil {
		t.Error("a path accepted as a zone")
	}
	if z, err := LoadZone(""); err != nil || z != time.UTC {
		t.Errorf("empty zone: %v %v", z, err)
	}
}

type memMarkers map[string]bool

func (m memMarkers) MarkerExists(_ context.Context, key string) (bool, error) { return m[key], nil }

type brokenMarkers struct{}

func (brokenMarkers) MarkerExists(context.Context, string) (bool, error) {
	return false, errors.New("connection refused")
}

// decideAndMark is what the job does: decide, store, then write the markers.
func decideAndMark(t *testing.T, p Policy, m memMarkers, at time.Time, loc *time.Location) Class {
	t.Helper()
	d, err := p.Decide(context.Background(), m, "shop", "DATABASE", at, loc)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range d.Markers {
		m[k] = true
	}
	return d.Class
}

func TestDecideFirstOfEachPeriod(t *testing.T) {
	p, _ := Parse("daily=35d weekly=13w monthly=25m yearly=7y")
	akl, _ := LoadZone("Pacific/Auckland")
	m := memMarkers{}
	day := func(mo time.Month, d int) time.Time { return time.Date(2026, mo, d, 3, 0, 0, 0, akl) }
	if c := decideAndMark(t, p, m, day(10, 20), akl); c != Yearly {
		t.Fatalf("first archive of the year: %s", c)
	}
	for _, tc := range []struct {
		at   time.Time
		want Class
	}{
		{day(11, 1), Monthly}, // Sunday: still ISO week 44, whose marker 10-20 (week 43) did not write
		{day(11, 2), Weekly},  // Monday, week 45
		{day(11, 3), Daily},
		{day(11, 9), Weekly},
		// A missed period start: 12-01 failed and 12-02 had no run.
		{day(12, 3), Monthly},
		{day(12, 4), Daily},
	} {
		if c := decideAndMark(t, p, m, tc.at, akl); c != tc.want {
			t.Errorf("%s: %s, want %s", tc.at.Format("Mon 2006-01-02"), c, tc.want)
		}
	}
	if _, err := p.Decide(context.Background(), brokenMarkers{}, "shop", "DATABASE", day(12, 5), akl); err == nil {
		t.Error("a marker read that failed was taken as an answer")
	}
	if d := p.Longest("shop", "DATABASE", day(12, 5), akl); d.Class != Yearly || len(d.Markers) != 3 ||
		d.Markers[0] != "_pgoffsite-retention/shop/DATABASE/yearly/2026" || d.Markers[2] != "_pgoffsite-retention/shop/DATABASE/weekly/2026-W49" {
		t.Errorf("Longest: %+v", d)
	}
}

// Without a marker write (a run that crashed after storing its archive) the period stays open:
// the next archive gets the class too.
func TestDecideAfterCrashBeforeMarkers(t *testing.T) {
	p, _ := Parse("daily=7d monthly=12m")
	m := memMarkers{}
	at := time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)
	d, _ := p.Decide(context.Background(), m, "a", "DB", at, time.UTC)
	if d.Class != Monthly {
		t.Fatal(d)
	}
	if c := decideAndMark(t, p, m, at.AddDate(0, 0, 1), time.UTC); c != Monthly {
		t.Errorf("after a crash before the markers: %s, want monthly again", c)
	}
	if c := decideAndMark(t, p, m, at.AddDate(0, 0, 2), time.UTC); c != Daily {
		t.Errorf("then: %s", c)
	}
}
