package spec

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Var is the variable naming the destinations.
const Var = "ARCHIVE_URL"

// Field is one destination of ARCHIVE_URL, as written: its problems say which one it is.
type Field struct {
	R   Reporter
	Raw string
	Pos int // 1-based
	N   int // how many destinations ARCHIVE_URL names
}

// Add reports a problem of this destination, under ARCHIVE_URL.
func (f Field) Add(msg, fix string) { f.R.Add(Var, f.Label()+msg, fix) }

// AddVar reports a problem of another variable this destination reads.
func (f Field) AddVar(name, msg, fix string) { f.R.Add(name, msg, fix) }

// Quote quotes a value for a message, without the secrets.
func (f Field) Quote(s string) string { return f.R.Quote(s) }

// Label names the destination in a message when ARCHIVE_URL names several: its position and
// scheme://host (the path of a URL without a host: a directory), never its query, where a
// pasted secret may be.
func (f Field) Label() string {
	if f.N == 1 {
		return ""
	}
	s := fmt.Sprintf("destination %d", f.Pos)
	if u, err := url.Parse(f.Raw); err == nil && u.Scheme != "" {
		where := u.Host
		if where == "" {
			where = u.Path
		}
		s += " (" + u.Scheme + "://" + where + ")"
	}
	return s + ": "
}

// Name says which destination a problem of another variable concerns.
func (f Field) Name() string {
	if f.N == 1 {
		return "destination"
	}
	return strings.TrimSuffix(f.Label(), ": ")
}

// Shown is the destination as a message may quote it: without credentials, query or fragment.
func (f Field) Shown() string {
	s := f.Raw
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 && (strings.IndexByte(rest, '/') < 0 || at < strings.IndexByte(rest, '/')) {
			user, _, _ := strings.Cut(rest[:at], ":")
			rest = user + "@" + rest[at+1:]
		}
		s = scheme + "://" + rest
	}
	return f.R.Quote(s)
}

// Query reads the destination's parameters, each at most once and each one of known, reporting
// the others with fix.
func (f Field) Query(u *url.URL, known []string, fix string) map[string]string {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		f.Add("has a query string that cannot be read", fix)
		return nil
	}
	out := map[string]string{}
	for name, vals := range q {
		switch {
		case !slices.Contains(known, name):
			// The name only: a value may be a pasted secret.
			f.Add("has an unknown parameter "+f.R.Quote(name), fix)
		case len(vals) > 1:
			f.Add("gives "+name+"= more than once", fix)
		default:
			out[name] = vals[0]
		}
	}
	return out
}

// URL checks an http(s) URL a parameter of this destination gives (what names it).
func (f Field) URL(what, raw, fix string) string { return f.R.URL(Var, f.Label()+what, raw, fix) }

// StorageClass checks a storage class a parameter of this destination gives.
func (f Field) StorageClass(what, raw string) string {
	return f.R.StorageClass(Var, f.Label()+what, raw)
}

// SSE checks an encryption mode a parameter of this destination gives.
func (f Field) SSE(what, raw string) string { return f.R.SSE(Var, f.Label()+what, raw) }
