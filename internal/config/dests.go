package config

import (
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/config/envlist"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

const (
	archiveFix = "use s3://bucket/optional/prefix, sftp://user@host/absolute/dir or file:///absolute/dir, several separated by spaces or commas"
	// sftpKeyVar holds the private key of sftp:// destinations that name no key=: a described
	// variable, and always a secret.
	sftpKeyVar = "SFTP_PRIVATE_KEY"
)

// reporter is how the kinds report through the checker.
type reporter struct{ ck *checker }

func (r reporter) Add(v, msg, fix string)         { r.ck.add(v, msg, fix) }
func (r reporter) Quote(s string) string          { return r.ck.q(s) }
func (r reporter) SSE(v, what, raw string) string { return r.ck.sse(v, what, raw) }
func (r reporter) URL(v, what, raw, fix string) string {
	return r.ck.checkURL(v, what, raw, fix)
}
func (r reporter) StorageClass(v, what, raw string) string {
	return r.ck.storageClass(v, what, raw)
}

// archives parses every destination ARCHIVE_URL names, separated by spaces, commas or line breaks (envlist). It
// reads the URL alone: the variables a destination names (keys=, key=) are checked by
// destinationEnv. Destinations with problems are returned too, with what could be read of them,
// so that the checks depending on them (AWS_REGION, credentials) see what the user meant.
func (ck *checker) archives(raw string) []spec.Archive {
	fields := envlist.Split(raw)
	if len(fields) == 0 {
		ck.add(spec.Var, "not set", archiveFix)
		return nil
	}
	var out []spec.Archive
	seen := map[string]int{}
	for i, f := range fields {
		d := spec.Field{R: reporter{ck}, Pos: i + 1, N: len(fields), Raw: f}
		before := len(ck.ps)
		a := parse(d)
		out = append(out, a)
		if len(ck.ps) > before {
			continue
		}
		k := a.Settings.Identity() // a has no problem: its kind read it
		if first, dup := seen[k]; dup {
			d.Add(fmt.Sprintf("is the same as destination %d", first), "list each destination once")
			continue
		}
		seen[k] = d.Pos
	}
	return out
}

// destinationEnv checks the variables each destination reads, as its kind says: the key pair
// keys=NAME names, the SFTP private keys and the pinned host keys. as are archives' result for
// ARCHIVE_URL, one per field.
func (ck *checker) destinationEnv(e env, as []spec.Archive) {
	fields := envlist.Split(e.ArchiveURL)
	checks := map[string]func(spec.Archive, spec.Field){} // one per kind, for all its destinations
	for i, a := range as {
		p, ok := dest.For(a.Scheme)
		if !ok {
			continue // already reported
		}
		check, ok := checks[a.Scheme]
		if !ok {
			check = p.EnvChecker(e.lookup)
			checks[a.Scheme] = check
		}
		check(a, spec.Field{R: reporter{ck}, Pos: i + 1, N: len(as), Raw: fields[i]})
	}
}

// lookup reads a variable: the described ones as envconfig read them, the others (those a
// destination names) from the environment.
func (e env) lookup(name string) string {
	v := reflect.ValueOf(e)
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("envconfig") == name {
			return v.Field(i).String()
		}
	}
	return os.Getenv(name)
}

// globalVars are the global variables ARCHIVE_URL's destinations read, as their kinds say.
func globalVars(as []spec.Archive) map[string]bool {
	read := map[string]bool{}
	for _, a := range as {
		if p, ok := dest.For(a.Scheme); ok {
			for _, v := range p.GlobalVars(a) {
				read[v] = true
			}
		}
	}
	return read
}

// Env is what the destinations' kinds need of the configuration to open and check them.
func (c Config) Env() spec.Env {
	return spec.Env{Getenv: c.Getenv, PartSize: c.PartSize, Parts: c.UploadConcurrency,
		Retention: c.Retention, TransitionDays: c.Bucket.TransitionDays, NoncurrentExpireDays: c.Bucket.NoncurrentExpireDays}
}

// Getenv reads a variable as the configuration checked it: the global settings of the
// destinations as their kinds read them (AWS_REGION is AWS_DEFAULT_REGION when unset,
// AWS_ENDPOINT_URL_S3 the endpoint in use, each spelled as S3 spells it), any other from the
// environment (the variables a destination names).
func (c Config) Getenv(name string) string {
	switch name {
	case "AWS_REGION":
		return c.Region
	case "AWS_ENDPOINT_URL_S3":
		return c.S3Endpoint
	case "S3_FORCE_PATH_STYLE":
		return strconv.FormatBool(c.S3ForcePathStyle)
	case "S3_STORAGE_CLASS":
		return c.S3StorageClass
	case "S3_SSE":
		return c.S3SSE
	case "S3_SSE_KMS_KEY_ID":
		return c.S3SSEKMSKeyID
	case "SFTP_KNOWN_HOSTS":
		return c.KnownHosts
	}
	return os.Getenv(name)
}

// parse does the checks every kind's URLs share, then hands the URL to its kind.
func parse(d spec.Field) spec.Archive {
	u, err := url.Parse(d.Raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, query included: not repeated.
		d.Add(d.Shown()+" is not a URL", archiveFix)
		// The scheme alone still tells which other variables this destination needs.
		scheme, _, _ := strings.Cut(strings.ToLower(d.Raw), ":")
		return spec.Archive{Scheme: scheme}
	}
	scheme := strings.ToLower(u.Scheme)
	p, known := dest.For(scheme)
	if u.User != nil {
		_, hasPassword := u.User.Password()
		if hasPassword && known && p.TakesUser() {
			// The rest of the URL is still read, and the kind reports the password: its
			// parameters may name the variable the fix is about.
			return p.Parse(u, d)
		}
		if hasPassword || !known || !p.TakesUser() {
			// Said without quoting the value: what is before @ may well be a secret.
			d.Add("has credentials in it", archiveFix+"; credentials go in variables: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or keys=NAME), SFTP_PRIVATE_KEY (or key=NAME)")
			return spec.Archive{Scheme: scheme}
		}
	}
	if u.Fragment != "" || strings.HasSuffix(d.Raw, "#") {
		d.Add("has a fragment (#...) in it", archiveFix)
		return spec.Archive{Scheme: scheme}
	}
	if u.RawQuery != "" && (!known || !p.TakesQuery()) {
		d.Add("has a query string in it", "only s3:// and sftp:// destinations take parameters; "+archiveFix)
		return spec.Archive{Scheme: scheme}
	}
	// A "." or ".." segment means different places to S3 (a literal key part) and to a
	// directory (the parent), and neither is what the user meant: refuse it rather than guess.
	if hasDotSegment(u.Path) {
		d.Add(d.Shown()+` has a "." or ".." path segment`,
			"write the prefix or directory without them, e.g. s3://bucket/db/prod, sftp://backup@host/srv/archive or file:///mnt/archive")
		return spec.Archive{Scheme: scheme}
	}
	if !known {
		d.Add(d.Shown()+" is neither s3://, sftp:// nor file://", archiveFix)
		return spec.Archive{}
	}
	return p.Parse(u, d)
}
