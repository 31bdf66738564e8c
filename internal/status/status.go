// Package status tells from the bucket's side whether backups arrive: for each target at each
// destination the newest archive and its age, a calendar of the last days (archived, missing,
// verified, failed verification), each day's size and its change, retention classes and
// totals, and the problems a watchdog acts on (stale, shrunken). It reads a listing, the
// manifests and the verification records, never a dump's bytes, and renders the report as
// text, JSON and a self-contained HTML page.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// Source lists and reads the small objects beside the archives (manifests, verification
// records); status never opens a dump. The listing is the store's own record of each object
// (size, when it was written, earlier versions): what a manifest claims is held to it.
type Source interface {
	List(ctx context.Context, prefix string) (store.Listing, error)
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
}

// Target is one database, named as BACKUP_TARGETS names it.
type Target struct {
	App      string
	Database string
	Env      bool // env:VAR, Database being VAR
}

func (t Target) String() string {
	if t.Env {
		return "env:" + t.Database
	}
	return t.App + ":" + t.Database
}

// Options are the watchdog's thresholds and the calendar's frame.
type Options struct {
	Now  time.Time
	Zone *time.Location // the days are dates in this zone (RETENTION_TIMEZONE); nil = UTC
	// MaxAge: a newest archive older than this is a problem (BACKUP_MAX_AGE).
	MaxAge time.Duration
	// MaxShrink: a newest archive smaller than the median of the week before by more than this
	// fraction is a problem (STATUS_MAX_SHRINK; 0.5 = 50 %).
	MaxShrink float64
	// Days is how many days the calendar covers, today last; default 90.
	Days int
}

// Statuses of a day.
const (
	Archived = "archived" // an archive finished that day
	Missing  = "missing"  // no archive finished that day
	Verified = "verified" // an archive of that day passed pgoffsite verify
	Failed   = "failed"   // an archive of that day failed pgoffsite verify
)

// Report is the status of every target at every destination.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	Timezone    string    `json:"timezone"`
	MaxAge      string    `json:"max_age"`
	MaxShrink   float64   `json:"max_shrink"`
	Targets     []Entry   `json:"targets"`
}

// Entry is one target at one destination.
type Entry struct {
	Target      string  `json:"target"`
	App         string  `json:"app"`
	Database    string  `json:"database"`
	Destination string  `json:"destination"`
	Newest      *Newest `json:"newest"`
	// Days are the calendar, oldest first, today last.
	Days []Day `json:"days"`
	// Retention counts the archives by the retention class their manifest gives.
	Retention  map[string]int `json:"retention"`
	Archives   int            `json:"archives"`
	TotalBytes int64          `json:"total_bytes"` // what the destination holds
	// Verification is the newest verification record of any archive of the target.
	Verification *catalog.Verification `json:"verification"`
	// Problems are what the watchdog fails on: no archive, a stale one, a shrunken one, a
	// destination that cannot be read.
	Problems []string `json:"problems"`
	// Warnings are worth a look but do not fail the watchdog.
	Warnings []string `json:"warnings"`
	// Unreadable: the destination could not be listed, so the calendar and totals tell nothing
	// (Problems says why).
	Unreadable bool `json:"unreadable,omitempty"`
}

// OK tells that the entry has no problem.
func (e Entry) OK() bool { return len(e.Problems) == 0 }

// Newest is the newest archive of an entry.
type Newest struct {
	Backup     string    `json:"backup"`
	FinishedAt time.Time `json:"finished_at"`
	Bytes      int64     `json:"bytes"` // the plaintext's size, also for encrypted archives
	AgeSeconds int64     `json:"age_seconds"`
	Key        string    `json:"key"`
	Encrypted  bool      `json:"encrypted"`
}

// Day is one calendar day.
type Day struct {
	Date   string `json:"date"` // YYYY-MM-DD in the report's zone
	Status string `json:"status"`
	// Bytes is the size of the day's newest archive (plaintext for encrypted ones), 0 when missing.
	Bytes int64 `json:"bytes"`
	// ChangePercent is Bytes' change from the previous day with an archive.
	ChangePercent *float64 `json:"change_percent,omitempty"`
}

// Marked tells that an archive finished that day.
func (d Day) Marked() bool { return d.Status != Missing }

// Last returns the report with only the last n days of each calendar.
func (r Report) Last(n int) Report {
	out := r
	out.Targets = make([]Entry, len(r.Targets))
	for i, e := range r.Targets {
		if len(e.Days) > n {
			e.Days = e.Days[len(e.Days)-n:]
		}
		out.Targets[i] = e
	}
	return out
}

// OK tells that no entry has a problem: the watchdog's exit status.
func (r Report) OK() bool {
	for _, e := range r.Targets {
		if !e.OK() {
			return false
		}
	}
	return true
}

// one archive of a target as status sees it.
type item struct {
	key      string
	info     catalog.KeyInfo
	rec      catalog.Record
	finished time.Time // bounded by when the store wrote it
	bytes    int64     // plaintext
	m        *catalog.Manifest
	// frozen: the manifest is in an archive storage class (Glacier), so it could not be read;
	// the archive counts by the store's record alone.
	frozen   bool
	verified *catalog.Verification
	// bad says why the archive does not count: no manifest, a manifest that cannot be read or
	// does not describe what the store holds, a time in the future.
	bad []string
}

// manifestReads bounds the manifests read at once from one destination.
const manifestReads = 8

// maxListed bounds the archives named one by one among an entry's problems.
const maxListed = 10

// Build reports one target at one destination (named dest for people). An archive counts only
// when its manifest is there and describes what the store holds (catalog.Mismatches); its time
// is what the manifest claims, never later than the store wrote it (catalog.Finished). Any other
// dump of the target is a problem named by its key.
func Build(ctx context.Context, src Source, dest string, t Target, o Options) Entry {
	o = o.defaults()
	e := Entry{Target: t.String(), App: t.App, Database: t.Database, Destination: dest, Retention: map[string]int{},
		Problems: []string{}, Warnings: []string{}}
	if t.Env {
		e.App = "env"
	}
	app, segment, addon := t.App, "", ""
	if t.Env {
		app, segment = t.Database, catalog.KeyDatabase(t.Database)
	} else {
		segment, addon = catalog.KeyNames(t.Database)
	}
	l, err := src.List(ctx, app+"/")
	if err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("cannot list the archives of %s at %s: %v", t, dest, err))
		e.Days, e.Unreadable = o.days(nil), true
		return e
	}
	if l.VersionsErr != nil {
		e.Warnings = append(e.Warnings, fmt.Sprintf("an overwritten archive cannot be seen at %s: %v", dest, l.VersionsErr))
	}
	var items []*item
	var candidates []*item // other segments of the app, when the database may be an add-on name
	for _, obj := range l.Objects {
		info, ok := catalog.ParseKey(obj.Key)
		if !ok || info.App != app {
			continue
		}
		rec, _ := catalog.RecordOf(l, obj.Key)
		it := &item{key: obj.Key, info: info, rec: rec, finished: info.FinishedAt}
		switch {
		case info.Database == segment:
			items = append(items, it)
		case addon != "":
			candidates = append(candidates, it)
		}
	}
	e.Warnings = append(e.Warnings, readAll(ctx, src, l, append(append([]*item{}, items...), candidates...))...)
	// An add-on name matches the manifests that name it; a dump of the same segment without a
	// readable manifest is, by where the job filed it, most likely the add-on's too.
	segments := map[string]bool{}
	for _, c := range candidates {
		if c.m != nil && c.m.Addon == addon {
			items = append(items, c)
			segments[c.info.Database] = true
		}
	}
	for _, c := range candidates {
		if c.m == nil && segments[c.info.Database] {
			items = append(items, c)
		}
	}
	var good, bad []*item
	for _, it := range items {
		it.judge(o.Now)
		if len(it.bad) > 0 {
			bad = append(bad, it)
		} else {
			good = append(good, it)
		}
	}
	e.Problems = append(e.Problems, badProblems(t, bad)...)
	e.Problems = append(e.Problems, loneParts(l, app, segment)...)
	items = good
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if !a.finished.Equal(b.finished) {
			return a.finished.Before(b.finished)
		}
		return a.info.Num < b.info.Num
	})
	for _, it := range items {
		e.Archives++
		e.TotalBytes += it.rec.StoredBytes()
		if it.m != nil && it.m.Retention != "" {
			e.Retention[it.m.Retention]++
		}
		if v := it.verified; v != nil && (e.Verification == nil || v.VerifiedAt.After(e.Verification.VerifiedAt)) {
			e.Verification = v
		}
	}
	e.Days = o.days(items)
	switch {
	case len(items) == 0 && len(bad) > 0:
		e.Problems = append(e.Problems, fmt.Sprintf("no archive of %s at %s matches its manifest: each one that does not is named above", t, dest))
		return e
	case len(items) == 0:
		e.Problems = append(e.Problems, fmt.Sprintf("no archive of %s at %s: has the backup job run with this ARCHIVE_URL?", t, dest))
		return e
	}
	newest := items[len(items)-1]
	e.Newest = &Newest{Backup: newest.info.Backup, FinishedAt: newest.finished, Bytes: newest.bytes,
		AgeSeconds: int64(o.Now.Sub(newest.finished) / time.Second), Key: newest.key, Encrypted: catalog.IsEncrypted(newest.key)}
	if v := e.Verification; v != nil && !v.Passed {
		e.Warnings = append(e.Warnings, fmt.Sprintf("the newest verification (%s, %s) failed: %s", v.Backup, v.VerifiedAt.In(o.Zone).Format("2006-01-02 15:04 MST"), v.Error))
	}
	if age := o.Now.Sub(newest.finished); o.MaxAge > 0 && age > o.MaxAge {
		e.Problems = append(e.Problems, fmt.Sprintf("stale: the newest archive (%s) finished %s ago, longer than BACKUP_MAX_AGE=%s: the backup job has not archived %s since %s",
			newest.info.Backup, Age(age), Duration(o.MaxAge), t, newest.finished.In(o.Zone).Format("2006-01-02 15:04 MST")))
	}
	if p := shrinkProblem(items, o.MaxShrink); p != "" {
		e.Problems = append(e.Problems, p)
	}
	return e
}

// loneParts names the sets of app's segment whose parts are listed without their dump or its
// manifest (catalog.LoneSets).
func loneParts(l store.Listing, app, segment string) []string {
	var out []string
	for _, dumpKey := range catalog.LoneSets(l) {
		if info, _ := catalog.ParseKey(dumpKey); info.App == app && info.Database == segment {
			out = append(out, catalog.LoneParts(dumpKey))
		}
	}
	return out
}

// judge holds the archive's manifest to the store's record of it, and bounds its time by it
// (catalog.Judge).
func (it *item) judge(now time.Time) {
	if it.rec.Manifest != nil && it.m == nil && !it.frozen {
		return // unreadable: readAll said why in it.bad
	}
	finished, bad := catalog.Judge(it.key, it.info, it.rec, it.m, now)
	it.bad = append(it.bad, bad...)
	it.finished = finished
	if it.frozen {
		it.bytes = it.rec.StoredBytes()
	}
}

// badProblems names the archives that do not count, a few at most one by one.
func badProblems(t Target, bad []*item) []string {
	sort.Slice(bad, func(i, j int) bool { return bad[i].key < bad[j].key })
	var out []string
	for i, it := range bad {
		if i == maxListed {
			out = append(out, fmt.Sprintf("%d more archives of %s do not match their manifests or have none (pgoffsite status --json lists the first %d)", len(bad)-i, t, maxListed))
			break
		}
		out = append(out, it.bad...)
	}
	return out
}

// shrinkProblem compares the newest archive with the median of those that finished in the
// week before it: a sudden drop is the classic sign of a broken dump.
func shrinkProblem(items []*item, maxShrink float64) string {
	if maxShrink <= 0 || len(items) < 2 {
		return ""
	}
	newest := items[len(items)-1]
	if newest.m == nil {
		return "" // its manifest is in Glacier: its plaintext size is unknown
	}
	var week []int64
	for _, it := range items[:len(items)-1] {
		if newest.finished.Sub(it.finished) <= 7*24*time.Hour && it.bytes > 0 {
			week = append(week, it.bytes)
		}
	}
	if len(week) == 0 {
		return ""
	}
	med := median(week)
	if float64(newest.bytes) >= float64(med)*(1-maxShrink) {
		return ""
	}
	drop := 100 * (1 - float64(newest.bytes)/float64(med))
	return fmt.Sprintf("shrunk: the newest archive (%s) is %s, %.0f %% less than the median %s of the week before (STATUS_MAX_SHRINK=%.0f%%): check that the database was dumped whole",
		newest.info.Backup, units.IEC(newest.bytes), drop, units.IEC(med), maxShrink*100)
}

func median(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// readAll reads the manifest and the verification record of each item, a few at a time. A
// manifest that cannot be read makes its archive not count (item.bad); a verification record
// that cannot be read is a warning.
func readAll(ctx context.Context, src Source, l store.Listing, items []*item) []string {
	var (
		mu       sync.Mutex
		warnings []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, manifestReads)
	)
	warn := func(s string) {
		mu.Lock()
		warnings = append(warnings, s)
		mu.Unlock()
	}
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if it.rec.Manifest != nil {
				var m catalog.Manifest
				err := readJSON(ctx, src, it.rec.Manifest.Key, &m)
				switch {
				case errors.Is(err, store.ErrArchived):
					// Lifecycle rules moved it to Glacier with its dump (AWS leaves objects under
					// 128 KB where they are, so this is rare): not a forgery, just not readable.
					it.frozen = true
				case err != nil:
					it.bad = append(it.bad, fmt.Sprintf("%s: its manifest cannot be read, so it does not count as an archive: %v", it.key, err))
				default:
					it.m = &m
					it.bytes = m.PlainBytes()
				}
			}
			if vk := catalog.VerifiedKey(it.key); listed(l, vk) {
				var v catalog.Verification
				if err := readJSON(ctx, src, vk, &v); err != nil {
					warn(err.Error())
				} else {
					it.verified = &v
				}
			}
		}()
	}
	wg.Wait()
	frozen := 0
	for _, it := range items {
		if it.frozen {
			frozen++
		}
	}
	if frozen > 0 {
		warnings = append(warnings, fmt.Sprintf("%d manifests are in an archive storage class (Glacier) and were not read: those archives count by the store's record alone (size and time), unchecked against their manifests", frozen))
	}
	sort.Strings(warnings)
	return warnings
}

func listed(l store.Listing, key string) bool {
	_, ok := l.Find(key)
	return ok
}

// readJSON reads a small JSON object (a manifest, a verification record).
func readJSON(ctx context.Context, src Source, key string, v any) error {
	if strings.HasSuffix(key, ".dump") || catalog.IsEncrypted(key) {
		// The one rule status lives by: it never downloads an archive.
		return fmt.Errorf("status: refusing to read the dump %s", key)
	}
	body, _, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("status: read %s: %w", key, err)
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("status: %s is not valid JSON: %w", key, err)
	}
	return nil
}

func (o Options) defaults() Options {
	if o.Zone == nil {
		o.Zone = time.UTC
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Days <= 0 {
		o.Days = 90
	}
	return o
}

// days lays items (sorted by finish time) out on the calendar: the last o.Days dates in o.Zone.
func (o Options) days(items []*item) []Day {
	type agg struct {
		newest         *item
		passed, failed bool
	}
	byDate := map[string]*agg{}
	for _, it := range items {
		d := it.finished.In(o.Zone).Format(time.DateOnly)
		a := byDate[d]
		if a == nil {
			a = &agg{}
			byDate[d] = a
		}
		a.newest = it // items are oldest first
		if v := it.verified; v != nil {
			a.passed = a.passed || v.Passed
			a.failed = a.failed || !v.Passed
		}
	}
	today := o.Now.In(o.Zone)
	y, m, d := today.Date()
	days := make([]Day, 0, o.Days)
	var prev int64
	for i := o.Days - 1; i >= 0; i-- {
		// AddDate on the date, not 24 h steps: a day with a DST change is 23 or 25 hours long.
		date := time.Date(y, m, d-i, 12, 0, 0, 0, o.Zone).Format(time.DateOnly)
		day := Day{Date: date, Status: Missing}
		if a := byDate[date]; a != nil {
			day.Status, day.Bytes = Archived, a.newest.bytes
			switch {
			case a.failed:
				day.Status = Failed // a failure is what must be noticed
			case a.passed:
				day.Status = Verified
			}
			if prev > 0 && day.Bytes > 0 {
				c := 100 * (float64(day.Bytes) - float64(prev)) / float64(prev)
				day.ChangePercent = &c
			}
			if day.Bytes > 0 {
				prev = day.Bytes
			}
		}
		days = append(days, day)
	}
	return days
}

// Age formats a duration for people: 3d 4h, 5h 12m, 40s.
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Duration formats a configured duration as people write it: 26h, not 26h0m0s.
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
