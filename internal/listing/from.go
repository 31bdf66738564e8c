package listing

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
)

// Forms is what --from takes, for help texts and messages.
const Forms = "latest, TARGET@latest, TARGET@YYYY-MM-DD (the newest archive finished that day), a key, or the location the backup logged"

// Want is what a --from names: an archive's dump, or an app bundle's release.json.
type Want int

const (
	Dump Want = iota
	Bundle
)

// From is where a --from is resolved.
type From struct {
	Src  catalog.Reader
	Want Want
	// Here is the destination read, and All every destination of ARCHIVE_URL (spec.Archive's
	// String: s3://bucket/prefix, file:///dir, sftp://user@host/dir), to tell a location of
	// another destination.
	Here string
	All  []string
	Zone *time.Location // the days of TARGET@YYYY-MM-DD (RETENTION_TIMEZONE); nil = UTC
	Now  time.Time
}

// Resolved is the key a --from names and what was passed over to find it.
type Resolved struct {
	Key string
	// Passed are the newer dumps of the target that are not archives to trust, each with why.
	Passed []string
}

// IsKey tells a --from that is already a key under the destination: resolving it reads nothing.
func IsKey(from string) bool {
	if IsLocation(from) || ByName(from) {
		return false
	}
	return strings.HasSuffix(from, ".dump") || catalog.IsEncrypted(from) || strings.HasSuffix(from, "/"+bundle.ReleaseName) || bundle.Completes(from)
}

// IsLocation tells a --from that is a location as the backup logged it (s3://bucket/prefix/KEY,
// /dir/KEY for file://, sftp://user@host/dir/KEY).
func IsLocation(from string) bool {
	return strings.Contains(from, "://") || strings.HasPrefix(from, "/")
}

// ByName tells a --from that names an archive by its target and day (latest, TARGET@latest,
// TARGET@YYYY-MM-DD) rather than by its key or location.
func ByName(from string) bool {
	return from == "latest" || (strings.Contains(from, "@") && !strings.Contains(from, "/"))
}

// Resolve turns a --from into the key it names at the destination: a key as it is; a location
// with the destination's own root stripped (a location of another destination is refused,
// naming the destination that holds it); latest and TARGET@latest the newest archive;
// TARGET@YYYY-MM-DD the newest archive that finished that day in the zone. Only archives whose
// manifests prove them are picked. For bundles TARGET is an app and the day is when the store
// wrote its release.json.
func (r From) Resolve(ctx context.Context, from string) (Resolved, error) {
	if r.Zone == nil {
		r.Zone = time.UTC
	}
	switch {
	case from == "":
		return Resolved{}, usage("--from is required: %s", Forms)
	case IsKey(from):
		return Resolved{Key: from}, nil
	case IsLocation(from):
		key, err := r.located(from)
		return Resolved{Key: key}, err
	}
	name, when, _ := strings.Cut(from, "@")
	if from == "latest" {
		name, when = "", "latest"
	}
	var day string
	if when != "latest" {
		d, err := time.ParseInLocation("2006-01-02", when, r.Zone)
		if err != nil || name == "" {
			return Resolved{}, usage("--from %s is none of %s", from, Forms)
		}
		day = d.Format("2006-01-02")
	}
	if r.Want == Bundle {
		return r.bundle(ctx, from, name, day)
	}
	archives, err := List(ctx, r.Src, name, r.Now)
	if err != nil {
		return Resolved{}, err
	}
	if targets := targetsOf(archives); len(targets) > 1 {
		return Resolved{}, usage("--from %s: %s holds archives of %d targets (%s): name one, e.g. --from %s@%s",
			from, r.Here, len(targets), strings.Join(targets, ", "), targets[0], orLatest(when))
	}
	var res Resolved
	var days []string
	for _, a := range archives {
		d := a.FinishedAt.In(r.Zone).Format("2006-01-02")
		switch {
		case !a.OK():
			if res.Key == "" && (day == "" || d == day) {
				res.Passed = append(res.Passed, a.Problems...)
			}
		case res.Key == "" && (day == "" || d == day):
			res.Key = a.Key
		default:
			days = append(days, d)
		}
	}
	if res.Key != "" {
		return res, nil
	}
	what := "any archive"
	if name != "" {
		what = "an archive of " + name
	}
	if day == "" {
		return res, usage("--from %s: %s does not hold %s whose manifest proves it (pgoffsite list %s shows what it holds)", from, r.Here, what, name)
	}
	return res, usage("--from %s: %s holds no archive of that day (%s, RETENTION_TIMEZONE's days)%s", from, r.Here, day, nearest(name, day, days))
}

func orLatest(when string) string {
	if when == "" {
		return "latest"
	}
	return when
}

// targetsOf names the targets of archives, sorted.
func targetsOf(archives []Archive) []string {
	var out []string
	for _, a := range archives {
		if !slices.Contains(out, a.Target) {
			out = append(out, a.Target)
		}
	}
	sort.Strings(out)
	return out
}

// nearest names the days closest to day before and after it that have an archive.
func nearest(name, day string, days []string) string {
	var before, after string
	for _, d := range days {
		if d < day && d > before {
			before = d
		}
		if d > day && (after == "" || d < after) {
			after = d
		}
	}
	var opts []string
	for _, d := range []string{before, after} {
		if d != "" {
			opts = append(opts, "--from "+name+"@"+d)
		}
	}
	if len(opts) == 0 {
		return ": it holds none of " + name + " at all"
	}
	return "; the nearest days with one: " + strings.Join(opts, " or ")
}

// located strips the destination's root from a location the backup logged.
func (r From) located(from string) (string, error) {
	loc := from
	if strings.HasPrefix(loc, "/") {
		loc = "file://" + loc // a file:// destination logs bare paths
	}
	if key, ok := strings.CutPrefix(loc, strings.TrimSuffix(r.Here, "/")+"/"); ok && key != "" {
		if !IsKey(key) {
			return "", usage("--from %s names %s under %s, which is not an archive's key (one ends .dump, .dump.age or /%s)", from, key, r.Here, bundle.ReleaseName)
		}
		return key, nil
	}
	var list []string
	for i, d := range r.All {
		if strings.HasPrefix(loc, strings.TrimSuffix(d, "/")+"/") {
			return "", usage("--from %s is at destination %d of ARCHIVE_URL (%s), not at the one read (%s): add --destination %d", from, i+1, d, r.Here, i+1)
		}
		list = append(list, fmt.Sprintf("%d %s", i+1, d))
	}
	return "", usage("--from %s is at none of ARCHIVE_URL's destinations (%s): give the key under one of them, or the location the backup logged", from, strings.Join(list, "; "))
}

// bundle resolves APP@latest, APP@YYYY-MM-DD and latest to a bundle's release.json: the highest
// release the store wrote that day (or at all), its release-config.json when a later run
// completed it with config values.
func (r From) bundle(ctx context.Context, from, app, day string) (Resolved, error) {
	prefix := ""
	if app != "" {
		prefix = app + "/" + bundle.Database + "/"
	}
	l, err := r.Src.List(ctx, prefix)
	if err != nil {
		return Resolved{}, fmt.Errorf("list the bundles under %s: %w", r.Src.Location(prefix), err)
	}
	best, bestRelease := "", 0
	var apps, days []string
	for _, o := range l.Objects {
		a, release, err := bundle.ParseKey(o.Key)
		if err != nil || (app != "" && a != app) {
			continue
		}
		if !slices.Contains(apps, a) {
			apps = append(apps, a)
		}
		d := o.Modified.In(r.Zone).Format("2006-01-02")
		if day != "" && d != day {
			days = append(days, d)
			continue
		}
		if release > bestRelease || (release == bestRelease && bundle.Completes(o.Key)) {
			best, bestRelease = o.Key, release
		}
	}
	sort.Strings(apps)
	switch {
	case len(apps) > 1:
		return Resolved{}, usage("--from %s: %s holds bundles of %d apps (%s): name one, e.g. --from %s@latest", from, r.Here, len(apps), strings.Join(apps, ", "), apps[0])
	case best != "":
		return Resolved{Key: best}, nil
	case day != "":
		return Resolved{}, usage("--from %s: %s holds no bundle of %s written that day (%s, RETENTION_TIMEZONE's days)%s", from, r.Here, app, day, nearest(app, day, days))
	}
	return Resolved{}, usage("--from %s: %s holds no app bundle (pgoffsite bundle makes one)", from, r.Here)
}
