package cli

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/archive"
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
			info, ok := archive.ParseKey(strings.TrimPrefix(aws.ToString(o.Key), "pgbackups/"))
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
