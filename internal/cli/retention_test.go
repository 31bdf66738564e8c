package cli

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// clock is the simulator's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// A year of Heroku backups, one a day, each finished at 03:00 Berlin time on the simulator's
// clock and archived by its own `pgoffsite backup` run (latest mode) into MinIO, each run
// deciding its archive's class from the markers. Expiry applied to every archive by its tag and
// its backup's date then leaves exactly what RETENTION promises.
func TestRetentionYearThroughTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("a year of runs")
	}
	w := newWorld(t)
	clk := &clock{}
	w.sim = herokusim.New(herokusim.Options{Token: apiKey, PgDump: w.pg.Bin("pg_dump"), Now: clk.now})
	w.platform, w.data = herokusim.Serve(t, w.sim)
	w.sim.AddApp("shop")
	addon, _ := w.database("shop", "DATABASE", 10)
	dump, err := filepath.Abs("../archive/testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	const policy = "daily=14d weekly=8w monthly=6m yearly=7y"
	env := w.env("shop")
	env["BACKUP_MODE"], env["BACKUP_MAX_AGE"] = "latest", "9000h" // the backups are of the past
	env["RETENTION"], env["RETENTION_TIMEZONE"] = policy, "Europe/Berlin"
	berlin, _ := time.LoadLocation("Europe/Berlin")
	var days []time.Time
	for d := time.Date(2026, 1, 1, 3, 0, 0, 0, berlin); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		clk.set(d)
		w.sim.AddBackup("shop", addon, dump)
		if code, out := w.run(env, "backup"); code != ExitOK {
			t.Fatalf("%s: exit %d\n%s", d.Format("2006-01-02"), code, out)
		}
		days = append(days, d)
	}

	p, _ := retention.Parse(policy)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
	kept := func(c retention.Class, at time.Time) bool {
		k, _ := p.Keep(c)
		return now.Before(at.AddDate(0, 0, k.Days()))
	}
	// By the calendar alone: the first of the year, the firsts of the months, the Mondays.
	expect := func(d time.Time) retention.Class {
		d = d.In(berlin)
		switch {
		case d.YearDay() == 1:
			return retention.Yearly
		case d.Day() == 1:
			return retention.Monthly
		case d.Weekday() == time.Monday:
			return retention.Weekly
		}
		return retention.Daily
	}
	got := map[retention.Class]int{}
	archives := 0
	pages := s3.NewListObjectsV2Paginator(w.s3(), &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket), Prefix: aws.String("pgbackups/shop/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			info, ok := catalog.ParseKey(strings.TrimPrefix(aws.ToString(o.Key), "pgbackups/"))
			if !ok {
				continue
			}
			archives++
			tags, err := w.s3().GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(w.bucket), Key: o.Key})
			if err != nil || len(tags.TagSet) != 1 {
				t.Fatalf("tags of %s: %v %v", aws.ToString(o.Key), tags, err)
			}
			class := retention.Class(aws.ToString(tags.TagSet[0].Value))
			if want := expect(info.FinishedAt); class != want {
				t.Errorf("%s (%s): %s, want %s", aws.ToString(o.Key), info.FinishedAt.In(berlin).Format("Mon 2006-01-02"), class, want)
			}
			if kept(class, info.FinishedAt) {
				got[class]++
			}
		}
	}
	if archives != len(days) {
		t.Fatalf("%d archives for %d days", archives, len(days))
	}
	// daily=14d: 18-31 December less two Mondays; weekly=8w: the Mondays from 9 November;
	// monthly=6m (186 days): July to December; yearly: 1 January.
	want := map[retention.Class]int{retention.Daily: 12, retention.Weekly: 8, retention.Monthly: 6, retention.Yearly: 1}
	for _, c := range retention.Classes {
		if got[c] != want[c] {
			t.Errorf("%s archives left after expiry: %d, want %d", c, got[c], want[c])
		}
	}
}

// The issue's days, through the simulator and whole backup runs, in Pacific/Auckland: Sunday
// 2026-11-01 (still 31 October in UTC) is November's monthly, Monday 11-02 the weekly of ISO week
// 45, 11-03 a daily, Monday 11-09 a weekly; the run of Tuesday 12-01 fails (Heroku refuses the
// key), none runs on 12-02, and the backup of 12-03 is December's monthly, 12-04 a daily.
func TestRetentionIssueDaysThroughTheSimulator(t *testing.T) {
	w := newWorld(t)
	clk := &clock{}
	w.sim = herokusim.New(herokusim.Options{Token: apiKey, PgDump: w.pg.Bin("pg_dump"), Now: clk.now})
	w.platform, w.data = herokusim.Serve(t, w.sim)
	w.sim.AddApp("shop")
	addon, _ := w.database("shop", "DATABASE", 10)
	dump, err := filepath.Abs("../archive/testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	env := w.env("shop")
	env["BACKUP_MODE"], env["BACKUP_MAX_AGE"] = "latest", "9000h"
	env["RETENTION"], env["RETENTION_TIMEZONE"] = "daily=35d weekly=13w monthly=25m yearly=7y", "Pacific/Auckland"
	akl, _ := time.LoadLocation("Pacific/Auckland")
	for _, c := range []struct {
		month   time.Month
		day     int
		want    string
		failing bool
	}{
		{10, 20, "yearly", false}, // this database's first archive of 2026
		{11, 1, "monthly", false},
		{11, 2, "weekly", false},
		{11, 3, "daily", false},
		{11, 9, "weekly", false},
		{12, 1, "", true},
		{12, 3, "monthly", false},
		{12, 4, "daily", false},
	} {
		at := time.Date(2026, c.month, c.day, 0, 40, 0, 0, akl) // just after midnight: the UTC date is the day before
		clk.set(at)
		w.sim.AddBackup("shop", addon, dump)
		runEnv := env
		if c.failing {
			runEnv = maps.Clone(env)
			runEnv["HEROKU_API_KEY"] = "hrku-e2e-00000000-0000-0000-0000-000000000000"
		}
		code, out := w.run(runEnv, "backup")
		if c.failing {
			if code != ExitFailed {
				t.Fatalf("%s: the failing run exited %d", at.Format("2006-01-02"), code)
			}
			continue
		}
		if code != ExitOK {
			t.Fatalf("%s: exit %d", at.Format("2006-01-02"), code)
		}
		if !strings.Contains(out, "retention="+c.want) {
			t.Errorf("%s (UTC %s): the run does not log retention=%s:\n%s", at.Format("Mon 2006-01-02"), at.UTC().Format("2006-01-02"), c.want, out)
		}
		m := newestManifest(t, w)
		tags, err := w.s3().GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(w.bucket), Key: aws.String("pgbackups/" + m.Key)})
		if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != c.want || m.Retention != c.want {
			t.Errorf("%s: tags %+v (%v), manifest %q; want %s", at.Format("Mon 2006-01-02"), tags, err, m.Retention, c.want)
		}
	}
}

// newestManifest reads the manifest of shop's newest archive: keys sort by time.
func newestManifest(t *testing.T, w *world) catalog.Manifest {
	t.Helper()
	out, err := w.s3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket), Prefix: aws.String("pgbackups/shop/DATABASE/")})
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, o := range out.Contents {
		if k := aws.ToString(o.Key); strings.HasSuffix(k, ".json") && k > last {
			last = k
		}
	}
	var m catalog.Manifest
	if err := json.Unmarshal(w.object(last), &m); err != nil {
		t.Fatalf("manifest %s: %v", last, err)
	}
	return m
}
