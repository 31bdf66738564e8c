package config

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/s3name"
)

const (
	archiveVar = "ARCHIVE_URL"
	archiveFix = "use s3://bucket/optional/prefix, sftp://user@host/absolute/dir or file:///absolute/dir, several separated by spaces"
	// DefaultKeyVar holds the private key of sftp:// destinations that name no key=.
	DefaultKeyVar = "SFTP_PRIVATE_KEY"
)

// regionRE is a region as providers spell them: eu-west-1, eu-central-003, auto.
var regionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,39}$`)

// s3Params are the query parameters an s3:// destination may carry, in the order the fix lists them.
var s3Params = []string{"endpoint", "region", "path_style", "storage_class", "sse", "keys"}

// dest is one destination of ARCHIVE_URL being parsed: its problems say which one it is.
type dest struct {
	ck  *checker
	pos int // 1-based
	n   int // how many ARCHIVE_URL names
	raw string
}

// archives parses every destination ARCHIVE_URL names, separated by spaces or line breaks. It
// reads the URL alone: the variables a destination names (keys=, key=) are checked by
// destinationEnv. Destinations with problems are returned too, with what could be read of them,
// so that the checks depending on them (AWS_REGION, credentials) see what the user meant.
func (ck *checker) archives(raw string) []Archive {
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		ck.add(archiveVar, "not set", archiveFix)
		return nil
	}
	var out []Archive
	seen := map[string]int{}
	for i, f := range fields {
		d := dest{ck: ck, pos: i + 1, n: len(fields), raw: f}
		before := len(ck.ps)
		a := d.parse()
		out = append(out, a)
		if len(ck.ps) > before {
			continue
		}
		k := a.identity()
		if first, dup := seen[k]; dup {
			d.add(fmt.Sprintf("is the same as destination %d", first), "list each destination once")
			continue
		}
		seen[k] = d.pos
	}
	return out
}

// identity tells two spellings of one destination apart from two destinations: the same bucket
// and prefix at another endpoint is another copy.
func (a Archive) identity() string {
	if a.Scheme == "s3" {
		return a.String() + " " + strings.TrimRight(strings.ToLower(a.Endpoint), "/")
	}
	if a.Scheme == "sftp" {
		a.Host = strings.ToLower(a.Host)
	}
	return a.String()
}

// label names the destination in a message when ARCHIVE_URL names several: its position and
// scheme://host, never its path's query, where a pasted secret may be.
func (d dest) label() string {
	if d.n == 1 {
		return ""
	}
	s := fmt.Sprintf("destination %d", d.pos)
	if u, err := url.Parse(d.raw); err == nil && u.Scheme != "" {
		where := u.Host
		if u.Scheme == "file" {
			where = u.Path
		}
		s += " (" + d.ck.scrub(u.Scheme+"://"+where) + ")"
	}
	return s + ": "
}

func (d dest) add(msg, fix string) { d.ck.add(archiveVar, d.label()+msg, fix) }

// name says which destination a problem of another variable concerns.
func (d dest) name() string {
	if d.n == 1 {
		return "destination"
	}
	return strings.TrimSuffix(d.label(), ": ")
}

// shown is the destination as a message may quote it: without credentials, query or fragment.
func (d dest) shown() string {
	s := d.raw
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
	return d.ck.q(s)
}

func (d dest) parse() Archive {
	u, err := url.Parse(d.raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, query included: not repeated.
		d.add(d.shown()+" is not a URL", archiveFix)
		// The scheme alone still tells which other variables this destination needs.
		scheme, _, _ := strings.Cut(strings.ToLower(d.raw), ":")
		return Archive{Scheme: scheme}
	}
	scheme := strings.ToLower(u.Scheme)
	if u.User != nil {
		_, hasPassword := u.User.Password()
		if hasPassword && scheme == "sftp" {
			// The rest of the URL is still read: its key= names the variable the fix is about.
			a := d.sftp(u)
			d.sftpPassword(a)
			return a
		}
		if hasPassword || scheme != "sftp" {
			// Said without quoting the value: what is before @ may well be a secret.
			d.add("has credentials in it", archiveFix+"; credentials go in variables: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or keys=NAME), SFTP_PRIVATE_KEY (or key=NAME)")
			return Archive{Scheme: scheme}
		}
	}
	if u.Fragment != "" || strings.HasSuffix(d.raw, "#") {
		d.add("has a fragment (#...) in it", archiveFix)
		return Archive{Scheme: scheme}
	}
	if u.RawQuery != "" && scheme != "s3" && scheme != "sftp" {
		d.add("has a query string in it", "only s3:// and sftp:// destinations take parameters; "+archiveFix)
		return Archive{Scheme: scheme}
	}
	// A "." or ".." segment means different places to S3 (a literal key part) and to a
	// directory (the parent), and neither is what the user meant: refuse it rather than guess.
	if hasDotSegment(u.Path) {
		d.add(d.shown()+` has a "." or ".." path segment`,
			"write the prefix or directory without them, e.g. s3://bucket/db/prod, sftp://backup@host/srv/archive or file:///mnt/archive")
		return Archive{Scheme: scheme}
	}
	switch scheme {
	case "s3":
		return d.s3(u)
	case "sftp":
		return d.sftp(u)
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			d.add(d.shown()+" is not an absolute directory", "write file:///absolute/dir (three slashes)")
			return Archive{Scheme: "file"}
		}
		dir := path.Clean(u.Path)
		if dir == "/" {
			// Archives would be written into the root of the filesystem, beside /etc and /usr.
			d.add(d.shown()+" is the root directory", "name a directory for the archives, e.g. file:///mnt/archive")
			return Archive{Scheme: "file"}
		}
		return Archive{Scheme: "file", Dir: dir}
	}
	d.add(d.shown()+" is neither s3://, sftp:// nor file://", archiveFix)
	return Archive{}
}

// query reads a destination's parameters, each at most once and each one known.
func (d dest) query(u *url.URL, known []string, fix string) map[string]string {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		d.add("has a query string that cannot be read", fix)
		return nil
	}
	out := map[string]string{}
	for name, vals := range q {
		switch {
		case !slices.Contains(known, name):
			// The name only: a value may be a pasted secret.
			d.add("has an unknown parameter "+d.ck.q(name), fix)
		case len(vals) > 1:
			d.add("gives "+name+"= more than once", fix)
		default:
			out[name] = vals[0]
		}
	}
	return out
}

func (d dest) s3(u *url.URL) Archive {
	a := Archive{Scheme: "s3", Bucket: u.Host, Prefix: cleanPrefix(u.Path)}
	if u.Host == "" {
		d.add(d.shown()+" names no bucket", "write s3://bucket/optional/prefix (two slashes before the bucket)")
	} else if why := s3name.BucketProblem(u.Host); why != "" {
		d.add(d.ck.q(u.Host)+" is not a valid S3 bucket name: "+why,
			"use the bucket's name as the S3 console shows it (3-63 lowercase letters, digits, dots and dashes)")
	}
	fix := "use only " + strings.Join(s3Params, "=, ") + "=NAME (credentials in NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY), " +
		"e.g. s3://bucket/prefix?endpoint=https://s3.eu-central-003.backblazeb2.com&region=eu-central-003&keys=B2"
	q := d.query(u, s3Params, fix)
	if v, ok := q["endpoint"]; ok {
		a.Endpoint = d.ck.checkURL(archiveVar, d.label()+"endpoint=", v, "write endpoint=https://host, the provider's S3 endpoint")
	}
	if v, ok := q["region"]; ok {
		a.Region = v
		if !regionRE.MatchString(v) {
			// Not quoted: a query value may be a pasted secret.
			d.add("region= is not a region name", "write the provider's region as it spells it, e.g. region=eu-central-003 or region=auto")
		}
	}
	if v, ok := q["path_style"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.add("path_style= is not a boolean", "write path_style=true or path_style=false")
		} else {
			a.PathStyle = &b
		}
	}
	if v, ok := q["storage_class"]; ok {
		a.StorageClass = d.ck.storageClass(archiveVar, d.label()+"storage_class=", v)
	}
	if v, ok := q["sse"]; ok {
		a.SSE = d.ck.sse(archiveVar, d.label()+"sse=", v)
	}
	if v, ok := q["keys"]; ok {
		a.Keys = v
		if !envVarRE.MatchString(v) {
			d.add("keys= does not name variables",
				"write keys=NAME with NAME in capitals, digits and underscores, e.g. keys=B2 to read B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY (never the keys themselves)")
			a.Keys = ""
		}
	}
	return a
}

// sftpPassword reports a password in an sftp:// URL (sftp://user:PASSWORD@host/dir), without
// quoting it: pgoffsite logs in with a private key only.
func (d dest) sftpPassword(a Archive) {
	keyVar := a.KeyVar
	if keyVar == "" {
		keyVar = DefaultKeyVar
	}
	d.add("has a password in it (between the user name and @): pgoffsite logs in to SFTP servers with a private key only, never a password",
		"write the URL without it, e.g. sftp://backup@vps.example.com/srv/pgoffsite, and change that password on the server, since it was in a config var; "+
			"then make a key for pgoffsite alone with `ssh-keygen -t ed25519 -N '' -f pgoffsite_ed25519`, add pgoffsite_ed25519.pub to the server's authorized_keys, "+
			"and heroku config:set "+keyVar+"=\"$(cat pgoffsite_ed25519)\" ("+keyVar+" holds the private key of this destination; key=NAME in the URL names another variable)")
}

func (d dest) sftp(u *url.URL) Archive {
	// Host names are case-insensitive, and ssh matches known_hosts lines in lower case.
	a := Archive{Scheme: "sftp", Host: strings.ToLower(u.Hostname()), KeyVar: DefaultKeyVar}
	const form = "write sftp://user@host[:port]/absolute/dir"
	if u.User != nil {
		a.User = u.User.Username()
	}
	if a.Host == "" {
		d.add(d.shown()+" names no host", form+" (two slashes before the user)")
		return a
	}
	if a.User == "" {
		d.add(d.shown()+" names no user", form+", e.g. sftp://backup@vps.example.com/srv/pgoffsite")
	}
	a.Port = 22
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			d.add(d.shown()+" has a port outside 1-65535", form+", with the port sshd listens on (22 when left out)")
		}
		a.Port = n
	}
	switch dir := path.Clean("/" + u.Path); {
	case u.Path == "" || dir == "/":
		d.add(d.shown()+" names no directory", "name the directory for the archives on the server, e.g. sftp://backup@host/srv/pgoffsite")
	default:
		a.Dir = dir
	}
	q := d.query(u, []string{"key"}, "use only key=NAME, the variable holding this destination's private key (SFTP_PRIVATE_KEY when left out)")
	if v, ok := q["key"]; ok {
		if !envVarRE.MatchString(v) {
			d.add("key= does not name a variable",
				"write key=NAME with NAME in capitals, digits and underscores, e.g. key=VPS_PRIVATE_KEY (never the key itself)")
		} else {
			a.KeyVar = v
		}
	}
	return a
}

// secretVars are the variables destination a reads secrets from: its kind's contribution to
// the set of secrets.
func (a Archive) secretVars() []string {
	switch {
	case a.Scheme == "s3" && a.Keys != "":
		return []string{a.Keys + "_ACCESS_KEY_ID", a.Keys + "_SECRET_ACCESS_KEY"}
	case a.Scheme == "sftp" && a.KeyVar != "":
		return []string{a.KeyVar}
	}
	return nil
}
