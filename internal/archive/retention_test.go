package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// datedSource yields, at each Open, the next of its backups: shop's DATABASE, finished at the
// given time. A backup listed in fail breaks off mid-stream, as a download that dies does.
type datedSource struct {
	body []byte
	mu   sync.Mutex
	next int
	at   []time.Time
	fail map[int]bool
}

func (s *datedSource) Open(ctx context.Context, t Target) (Backup, error) {
	s.mu.Lock()
	i := s.next
	s.next++
	s.mu.Unlock()
	at := s.at[i]
	var r io.Reader = bytes.NewReader(s.body)
	if s.fail[i] {
		r = io.MultiReader(bytes.NewReader(s.body[:len(s.body)/2]), errReader{errors.New("connection reset by peer")})
	}
	name := "b" + at.UTC().Format("060102")
	return Backup{Meta: catalog.Meta{App: "shop", Database: "DATABASE", Backup: name, At: at, CreatedAt: at.Add(-time.Minute), FinishedAt: at, Mode: "capture",
		Origin: catalog.Origin{Source: "pgbackups", Heroku: &catalog.HerokuOrigin{App: "shop", Attachment: "DATABASE", Addon: "postgresql-x-1", BillingApp: "shop"}}},
		Body: io.NopCloser(r), Size: int64(len(s.body))}, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// retentionJob archives into a fresh MinIO bucket (real s3store, markers there) and a directory.
func retentionJob(t *testing.T, src Source, policy string, zone *time.Location) (*Job, *s3.Client, string, string) {
	t.Helper()
	m := testenv.StartMinIO(t)
	bucket := m.CreateBucket(t, "retention")
	client := m.Client(t)
	s3st := s3store.New(client, s3store.Options{Bucket: bucket, Prefix: "pg"})
	dir := t.TempDir()
	fst, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := retention.Parse(policy)
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{Source: src, Version: "test", Log: zerolog.New(io.Discard), Check: CheckHeader,
		Destinations: []Destination{
			{Name: "s3://" + bucket + "/pg", Store: s3st, Markers: s3st},
			{Name: "file://" + dir, Store: fst, Markers: fst},
		},
		Retention: p, RetentionZone: zone}
	return j, client, bucket, dir
}

func tagOf(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("tags of %s: %v", key, err)
	}
	var kv []string
	for _, tg := range out.TagSet {
		kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	return strings.Join(kv, "&")
}

func readManifest(t *testing.T, path string) catalog.Manifest {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The class comes from the backup's finish time in RETENTION_TIMEZONE. 2026-11-01 is a Sunday,
// the first of November in Auckland but still 31 October in UTC; Monday 11-02 begins ISO week
// 45, Monday 11-09 week 46. The run of Tuesday 12-01 fails and none happens on 12-02: the backup
// of 12-03 is December's monthly, 12-04 a daily. Every copy gets the same class: the S3 tag on
// dump and manifest, and the manifest in the directory.
func TestRetentionClassesThroughS3(t *testing.T) {
	akl, err := retention.LoadZone("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	local := func(mo time.Month, d, h int) time.Time { return time.Date(2026, mo, d, h, 30, 0, 0, akl) }
	cases := []struct {
		at   time.Time
		want retention.Class
	}{
		{local(10, 20, 3), retention.Yearly}, // the first archive of 2026 for this database
		{local(11, 1, 3), retention.Monthly}, // 2026-10-31 14:30 UTC
		{local(11, 2, 3), retention.Weekly},
		{local(11, 3, 3), retention.Daily},
		{local(11, 9, 3), retention.Weekly},
		{local(12, 1, 3), ""}, // fails
		{local(12, 3, 3), retention.Monthly},
		{local(12, 4, 3), retention.Daily},
	}
	if got := cases[1].at.UTC().Format("2006-01-02"); got != "2026-10-31" {
		t.Fatalf("the zone does not differ from UTC: %s", got)
	}
	src := &datedSource{body: realDump(t), fail: map[int]bool{5: true}}
	for _, c := range cases {
		src.at = append(src.at, c.at)
	}
	j, client, bucket, dir := retentionJob(t, src, "daily=35d weekly=13w monthly=25m yearly=7y", akl)
	for _, c := range cases {
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE"})
		day := c.at.Format("Mon 2006-01-02 MST")
		if c.want == "" {
			if res.Err == nil {
				t.Fatalf("%s: the broken download was archived", day)
			}
			continue
		}
		if res.Err != nil {
			t.Fatalf("%s: %v", day, res.Err)
		}
		if res.Retention != string(c.want) {
			t.Errorf("%s: class %s, want %s", day, res.Retention, c.want)
		}
		want := "retention=" + string(c.want)
		if got := tagOf(t, client, bucket, "pg/"+res.Key); got != want {
			t.Errorf("%s: dump tagged %q, want %q", day, got, want)
		}
		if got := tagOf(t, client, bucket, "pg/"+catalog.ManifestKey(res.Key)); got != want {
			t.Errorf("%s: manifest tagged %q, want %q", day, got, want)
		}
		if m := readManifest(t, filepath.Join(dir, catalog.ManifestKey(res.Key))); m.Retention != string(c.want) {
			t.Errorf("%s: manifest in the directory says %q, want %s", day, m.Retention, c.want)
		}
	}
	// The markers are files in the directory too, so that a run whose S3 destination is down
	// decides from them.
	if _, err := os.Stat(filepath.Join(dir, "_pgoffsite-retention/shop/DATABASE/monthly/2026-11")); err != nil {
		t.Errorf("marker file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_pgoffsite-retention/shop/DATABASE/monthly/2026-10")); err != nil {
		t.Errorf("marker file of October (the yearly archive's month): %v", err)
	}
}

// A year of daily backups, each through the job into MinIO, each class decided from the
// markers; then expiry is applied to every object by its tag and its backup's date, as the
// lifecycle rules of setup-bucket do. What is left is exactly RETENTION's promise.
func TestRetentionYear(t *testing.T) {
	if testing.Short() {
		t.Skip("a year of archives")
	}
	zone, _ := retention.LoadZone("Europe/Berlin")
	policy, _ := retention.Parse("daily=14d weekly=8w monthly=6m yearly=7y")
	start := time.Date(2026, 1, 1, 4, 0, 0, 0, zone)
	src := &datedSource{body: realDump(t)}
	var days []time.Time
	for d := start; d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		days = append(days, d)
		src.at = append(src.at, d)
	}
	j, client, bucket, _ := retentionJob(t, src, policy.String(), zone)
	j.Destinations = j.Destinations[:1] // S3 alone: a year of copies in a directory adds nothing
	for range days {
		if res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE"}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	// The class each day must get, by the calendar alone.
	expect := func(d time.Time) retention.Class {
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
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, zone)
	kept := func(class retention.Class, at time.Time) bool {
		k, _ := policy.Keep(class)
		return now.Before(at.AddDate(0, 0, k.Days()))
	}
	want, got := map[retention.Class]int{}, map[retention.Class]int{}
	for _, d := range days {
		if c := expect(d); kept(c, d) {
			want[c]++
		}
	}
	var objects int
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("pg/shop/")})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), "pg/")
			info, ok := catalog.ParseKey(key)
			if !ok {
				continue // manifests
			}
			objects++
			tag := tagOf(t, client, bucket, aws.ToString(o.Key))
			class := retention.Class(strings.TrimPrefix(tag, "retention="))
			if want := expect(info.FinishedAt.In(zone)); class != want {
				t.Errorf("%s: %s, want %s", key, tag, want)
			}
			if kept(class, info.FinishedAt) {
				got[class]++
			}
		}
	}
	if objects != len(days) {
		t.Fatalf("%d archives, want %d", objects, len(days))
	}
	// daily=14d: the last 14 days less their Mondays (2); weekly=8w: the Mondays of the last 56
	// days (none of them a first of the month); monthly=6m (186 days): July to December; the yearly.
	fixed := map[retention.Class]int{retention.Daily: 12, retention.Weekly: 8, retention.Monthly: 6, retention.Yearly: 1}
	for _, c := range retention.Classes {
		if got[c] != want[c] || got[c] != fixed[c] {
			t.Errorf("%s archives kept: %d, want %d (calendar) and %d", c, got[c], want[c], fixed[c])
		}
	}
}

// memMarkers answers marker lookups from a memstore, or fails every lookup with err.
type memMarkers struct {
	st  *memstore.Store
	err error
}

func (m memMarkers) MarkerExists(_ context.Context, key string) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	return m.st.Get(key) != nil, nil
}

// The class comes from the first destination that answers; when the first cannot, the next
// decides, and every copy gets the same class. When none can, the archive is kept as the longest
// class listed, with a warning naming the fix: a period is never lost.
func TestRetentionDecisionAcrossDestinations(t *testing.T) {
	policy, _ := retention.Parse("daily=7d monthly=12m")
	at := time.Date(2026, 3, 10, 2, 0, 0, 0, time.UTC)
	down, up := &memstore.Store{}, &memstore.Store{}
	run := func(dests []Destination) (Result, string) {
		var logs bytes.Buffer
		j := &Job{Source: &datedSource{body: realDump(t), at: []time.Time{at}}, Destinations: dests, Version: "test",
			Log: zerolog.New(&logs), Check: CheckHeader, Retention: policy}
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE"})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return res, logs.String()
	}
	marker := "_pgoffsite-retention/shop/DATABASE/monthly/2026-03"
	if err := up.Put(context.Background(), store.Object{Key: marker, Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	res, logs := run([]Destination{
		{Name: "first", Store: down, Markers: memMarkers{err: errors.New("AccessDenied")}},
		{Name: "second", Store: up, Markers: memMarkers{st: up}},
	})
	if res.Retention != "daily" || !strings.Contains(logs, "cannot read the retention markers there") {
		t.Errorf("second destination's markers: %s\n%s", res.Retention, logs)
	}
	for _, st := range []*memstore.Store{down, up} {
		var m catalog.Manifest
		if err := json.Unmarshal(st.Get(catalog.ManifestKey(res.Key)), &m); err != nil || m.Retention != "daily" {
			t.Errorf("manifest: %v %q", err, m.Retention)
		}
	}

	none := &memstore.Store{}
	res, logs = run([]Destination{{Name: "only", Store: none, Markers: memMarkers{err: errors.New("AccessDenied")}}})
	if res.Retention != "monthly" || !strings.Contains(logs, "kept as the longest class") || !strings.Contains(logs, "pgoffsite check") {
		t.Errorf("no destination answers: %s\n%s", res.Retention, logs)
	}
	// The fix of an SFTP server's refusal is its own error's; an S3 policy is no fix there.
	refused := errors.New("permission denied: the SFTP user backup may not look inside /srv/pgoffsite/_pgoffsite-retention")
	_, logs = run([]Destination{{Name: "sftp://backup@vps.example.com/srv/pgoffsite", Store: &memstore.Store{}, Markers: memMarkers{err: refused}}})
	if !strings.Contains(logs, "may not look inside /srv/pgoffsite/_pgoffsite-retention") || strings.Contains(logs, "pgoffsite policy") {
		t.Errorf("an SFTP server refusing the markers:\n%s", logs)
	}
	// A destination without markers at all records the class decided elsewhere, and holds none.
	plain := &memstore.Store{}
	res, _ = run([]Destination{{Name: "markers", Store: &memstore.Store{}, Markers: memMarkers{st: &memstore.Store{}}}, {Name: "plain", Store: plain}})
	if res.Retention != "monthly" || plain.Get(marker) != nil || plain.Len() != 2 {
		t.Errorf("destination without markers: %s, %d objects", res.Retention, plain.Len())
	}
}

// noMarkerWrites refuses to store markers, as a full disk or a revoked permission would.
type noMarkerWrites struct{ *memstore.Store }

func (s noMarkerWrites) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if strings.HasPrefix(obj.Key, retention.MarkerPrefix) {
		return errors.New("permission denied")
	}
	return s.Store.Put(ctx, obj, r)
}

// A marker that cannot be written does not fail the archive, which is stored: the run warns, and
// the next archive of the period gets the class too.
func TestRetentionMarkerWriteFails(t *testing.T) {
	policy, _ := retention.Parse("daily=7d monthly=12m")
	st := noMarkerWrites{&memstore.Store{}}
	day := time.Date(2026, 3, 10, 2, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	j := &Job{Source: &datedSource{body: realDump(t), at: []time.Time{day, day.AddDate(0, 0, 1)}},
		Destinations: []Destination{{Name: "mem", Store: st, Markers: memMarkers{st: st.Store}}},
		Version:      "test", Log: zerolog.New(&logs), Check: CheckHeader, Retention: policy}
	for i := range 2 {
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE"})
		if res.Err != nil || res.Retention != "monthly" {
			t.Errorf("archive %d: %v, class %s; want stored, monthly", i, res.Err, res.Retention)
		}
	}
	if !strings.Contains(logs.String(), "cannot write the retention marker") {
		t.Errorf("no warning:\n%s", logs.String())
	}
}

// Two runs at once in the same period (two backups of one database): both archives are stored,
// the period gets its class at least once, and the one marker is written once, never replaced.
func TestRetentionTwoRunsAtOnce(t *testing.T) {
	policy, _ := retention.Parse("daily=7d monthly=12m")
	st := &memstore.Store{}
	day := time.Date(2026, 4, 1, 2, 0, 0, 0, time.UTC)
	src := &datedSource{body: realDump(t), at: []time.Time{day, day.Add(time.Minute)}}
	j := &Job{Source: src, Destinations: []Destination{{Name: "mem", Store: st, Markers: memMarkers{st: st}}},
		Version: "test", Log: zerolog.New(io.Discard), Check: CheckHeader, Retention: policy}
	results := make([]Result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE"})
		}()
	}
	wg.Wait()
	monthly := 0
	for _, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Retention == "monthly" {
			monthly++
		}
	}
	if monthly == 0 {
		t.Error("two runs at once: the month got no monthly archive")
	}
	if st.Get("_pgoffsite-retention/shop/DATABASE/monthly/2026-04") == nil {
		t.Error("no marker")
	}
}
