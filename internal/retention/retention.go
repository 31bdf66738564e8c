// Package retention is grandfather–father–son retention: RETENTION parsed into a Policy, the
// periods a backup falls in (its day, ISO week, month and year in RETENTION_TIMEZONE), and the
// class an archive gets from marker objects that say which periods already have one.
//
// The uploader may not read or list archives, so the state is kept in small marker objects, one
// per class and period, under MarkerPrefix. An archive gets the longest class whose period has no
// marker yet; once it is stored, markers are written (never overwritten) for that class and every
// shorter one. A run that stores an archive and dies before its markers leaves the period open:
// the next archive of the period gets the class too, one archive more kept, none lost.
package retention

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // RETENTION_TIMEZONE must load on a system without zoneinfo files

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
)

// Class is what an archive is kept as; its S3 tag value (retention=CLASS).
type Class string

// The classes, shortest first.
const (
	Daily   Class = "daily"
	Weekly  Class = "weekly"
	Monthly Class = "monthly"
	Yearly  Class = "yearly"
)

// Classes lists every class, shortest first.
var Classes = []Class{Daily, Weekly, Monthly, Yearly}

// TagKey is the S3 object tag that carries the class.
const TagKey = "retention"

// Var and ZoneVar name the configuration variables, for errors.
const (
	Var     = "RETENTION"
	ZoneVar = "RETENTION_TIMEZONE"
)

// Keep is how long a class is kept: N units of d(ays), w(eeks), m(onths) or y(ears).
type Keep struct {
	N    int
	Unit byte
}

// Days is the lifecycle expiry for Keep: months count 31 days and years 366, so an archive is
// kept at least as long as RETENTION says, never a day less.
func (k Keep) Days() int {
	switch k.Unit {
	case 'w':
		return 7 * k.N
	case 'm':
		return 31 * k.N
	case 'y':
		return 366 * k.N
	}
	return k.N
}

func (k Keep) String() string { return strconv.Itoa(k.N) + string(k.Unit) }

// Policy is a parsed RETENTION: how long each listed class is kept. The zero Policy is "unset":
// archives carry no class and one flat expiry applies, as before RETENTION existed.
type Policy struct {
	keep map[Class]Keep
}

// Parse reads RETENTION, e.g. "daily=35d weekly=13w monthly=25m yearly=7y". Classes are separated
// by spaces, commas or line breaks (envlist), each at most once; daily is required (every archive qualifies for it), the
// others are optional. An empty string is the unset Policy.
func Parse(s string) (Policy, error) {
	var p Policy
	fields := envlist.Split(s)
	if len(fields) == 0 {
		return p, nil
	}
	p.keep = map[Class]Keep{}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(Var+": "+format, args...))
	}
	for _, f := range fields {
		name, val, ok := strings.Cut(f, "=")
		c := Class(strings.ToLower(name))
		if !ok {
			bad("%q: want CLASS=DURATION, e.g. daily=35d", f)
			continue
		}
		if !c.valid() {
			bad("%q: unknown class %q: want daily, weekly, monthly or yearly", f, name)
			continue
		}
		if _, dup := p.keep[c]; dup {
			bad("%s is given twice: keep one", c)
			continue
		}
		k, err := parseKeep(val)
		if err != nil {
			bad("%s=%s: %v", c, val, err)
			continue
		}
		p.keep[c] = k
	}
	if len(errs) == 0 {
		if _, ok := p.keep[Daily]; !ok {
			bad("daily is missing: say how long every archive is kept, e.g. daily=35d")
		}
		// A longer class kept for less than a shorter one would expire its archives first.
		prev := Class("")
		for _, c := range Classes {
			k, ok := p.keep[c]
			if !ok {
				continue
			}
			if prev != "" && k.Days() < p.keep[prev].Days() {
				bad("%s=%s keeps archives for less than %s=%s: a %s archive must outlive the %s ones, make it at least %d days",
					c, k, prev, p.keep[prev], c, prev, p.keep[prev].Days())
			}
			prev = c
		}
	}
	if len(errs) > 0 {
		return Policy{}, errors.Join(errs...)
	}
	return p, nil
}

func parseKeep(v string) (Keep, error) {
	digits := strings.TrimLeft(v, "0123456789")
	num, unit := v[:len(v)-len(digits)], digits
	if num == "" {
		return Keep{}, errors.New("want a number and a unit d, w, m or y, e.g. 35d")
	}
	switch unit {
	case "d", "w", "m", "y":
	case "":
		return Keep{}, fmt.Errorf("%q has no unit: want a number and a unit d, w, m or y, e.g. 35d", v)
	default:
		fix := "want d (days), w (weeks), m (months) or y (years)"
		if u := unitOf(unit); u != 0 && num != "0" {
			fix = fmt.Sprintf("write %s%c", num, u)
		} else {
			fix += ", e.g. 35d"
		}
		return Keep{}, fmt.Errorf("unit %q is not one: %s", unit, fix)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return Keep{}, errors.New("want a whole number of at least 1 before the unit, e.g. 35d")
	}
	k := Keep{N: n, Unit: unit[0]}
	if k.Days() > 100*366 {
		return Keep{}, errors.New("more than 100 years: S3 lifecycle rules cannot say so")
	}
	return k, nil
}

// unitOf is the one-letter unit a spelled-out one means (days, Weeks, month…), 0 for none.
func unitOf(word string) byte {
	for _, u := range []string{"day", "week", "month", "year"} {
		if w := strings.ToLower(word); w == u || w == u+"s" {
			return u[0]
		}
	}
	return 0
}

func (c Class) valid() bool {
	for _, k := range Classes {
		if c == k {
			return true
		}
	}
	return false
}

// Set reports whether RETENTION was given.
func (p Policy) Set() bool { return len(p.keep) > 0 }

// Keep returns how long c is kept, and whether c is listed.
func (p Policy) Keep(c Class) (Keep, bool) {
	k, ok := p.keep[c]
	return k, ok
}

// Listed returns the listed classes, shortest first.
func (p Policy) Listed() []Class {
	var out []Class
	for _, c := range Classes {
		if _, ok := p.keep[c]; ok {
			out = append(out, c)
		}
	}
	return out
}

// String is the policy in RETENTION's own syntax.
func (p Policy) String() string {
	var parts []string
	for _, c := range p.Listed() {
		parts = append(parts, string(c)+"="+p.keep[c].String())
	}
	return strings.Join(parts, " ")
}

// Period names the period of class c that t falls in, in zone loc: 2026-11-01 (day),
// 2026-W45 (ISO week), 2026-11 (month), 2026 (year).
func Period(c Class, t time.Time, loc *time.Location) string {
	t = t.In(loc)
	switch c {
	case Weekly:
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	case Monthly:
		return t.Format("2006-01")
	case Yearly:
		return t.Format("2006")
	}
	return t.Format("2006-01-02")
}

// MarkerPrefix is the folder, relative to a destination's prefix, that holds the markers.
// Archive keys begin with an app name, which cannot begin with an underscore.
const MarkerPrefix = "_pgoffsite-retention/"

// MarkerKey is the marker of class c's period containing t for one target (app and the key's
// database segment), relative to the destination's prefix.
func MarkerKey(app, database string, c Class, t time.Time, loc *time.Location) string {
	return MarkerPrefix + app + "/" + database + "/" + string(c) + "/" + Period(c, t, loc)
}

// Markers tells whether a marker exists.
type Markers interface {
	MarkerExists(ctx context.Context, key string) (bool, error)
}

// Decision is the class an archive gets and the markers to write once it is stored.
type Decision struct {
	Class Class
	// Markers are the keys to create after the archive is stored: the class's own period and
	// every shorter listed class's period that had none.
	Markers []string
}

// Decide gives the backup of app/database that finished at t the longest listed class whose
// period has no marker in m. Daily needs no marker: it is what every other archive gets.
func (p Policy) Decide(ctx context.Context, m Markers, app, database string, t time.Time, loc *time.Location) (Decision, error) {
	d := Decision{Class: Daily}
	listed := p.Listed()
	for i := len(listed) - 1; i >= 0; i-- {
		c := listed[i]
		if c == Daily {
			break
		}
		key := MarkerKey(app, database, c, t, loc)
		ok, err := m.MarkerExists(ctx, key)
		if err != nil {
			return Decision{}, fmt.Errorf("retention: read marker %s: %w", key, err)
		}
		if ok {
			continue
		}
		if d.Class == Daily {
			d.Class = c
		}
		d.Markers = append(d.Markers, key)
	}
	return d, nil
}

// Longest is the decision when no destination can tell which periods have an archive: the
// longest class listed, so that no period is lost (at the cost of keeping this archive longer),
// with the markers of every period the backup falls in, so that once they can be written the
// next archives of those periods are not kept as long too.
func (p Policy) Longest(app, database string, t time.Time, loc *time.Location) Decision {
	l := p.Listed()
	d := Decision{Class: l[len(l)-1]}
	for i := len(l) - 1; i >= 0 && l[i] != Daily; i-- {
		d.Markers = append(d.Markers, MarkerKey(app, database, l[i], t, loc))
	}
	return d
}

// LoadZone reads RETENTION_TIMEZONE: an IANA name; empty is UTC.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if strings.ContainsAny(name, " \t") || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%s %q: want an IANA time zone name such as Europe/Berlin or UTC", ZoneVar, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: not a time zone this system knows: want an IANA name such as Europe/Berlin or UTC", ZoneVar, name)
	}
	return loc, nil
}
