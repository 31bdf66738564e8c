package s3store

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3name"
)

// Parser reads s3://bucket/optional/prefix destinations and their parameters.
type Parser struct{}

// regionRE is a region as providers spell them: eu-west-1, eu-central-003, auto.
var regionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,39}$`)

// params are the query parameters an s3:// destination may carry, in the order the fix lists them.
var params = []string{"endpoint", "region", "path_style", "storage_class", "sse", "keys"}

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return true }

func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	a := spec.Archive{Scheme: "s3", Bucket: u.Host, Prefix: cleanPrefix(u.Path)}
	if u.Host == "" {
		r.Add(r.Shown()+" names no bucket", "write s3://bucket/optional/prefix (two slashes before the bucket)")
	} else if why := s3name.BucketProblem(u.Host); why != "" {
		r.Add(r.Quote(u.Host)+" is not a valid S3 bucket name: "+why,
			"use the bucket's name as the S3 console shows it (3-63 lowercase letters, digits, dots and dashes)")
	}
	fix := "use only " + strings.Join(params, "=, ") + "=NAME (credentials in NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY), " +
		"e.g. s3://bucket/prefix?endpoint=https://s3.eu-central-003.backblazeb2.com&region=eu-central-003&keys=B2"
	q := r.Query(u, params, fix)
	if v, ok := q["endpoint"]; ok {
		a.Endpoint = r.URL("endpoint=", v, "write endpoint=https://host, the provider's S3 endpoint")
	}
	if v, ok := q["region"]; ok {
		a.Region = v
		if !regionRE.MatchString(v) {
			// Not quoted: a query value may be a pasted secret.
			r.Add("region= is not a region name", "write the provider's region as it spells it, e.g. region=eu-central-003 or region=auto")
		}
	}
	if v, ok := q["path_style"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.Add("path_style= is not a boolean", "write path_style=true or path_style=false")
		} else {
			a.PathStyle = &b
		}
	}
	if v, ok := q["storage_class"]; ok {
		a.StorageClass = r.StorageClass("storage_class=", v)
	}
	if v, ok := q["sse"]; ok {
		a.SSE = r.SSE("sse=", v)
	}
	if v, ok := q["keys"]; ok {
		a.Keys = v
		if !spec.IsVarName(v) {
			r.Add("keys= does not name variables",
				"write keys=NAME with NAME in capitals, digits and underscores, e.g. keys=B2 to read B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY (never the keys themselves)")
			a.Keys = ""
		}
	}
	return a
}

// cleanPrefix drops leading, trailing and doubled slashes: "/a//b/" is "a/b".
func cleanPrefix(p string) string {
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	return strings.Join(parts, "/")
}

// Identity: the same bucket and prefix at another endpoint is another copy.
func (Parser) Identity(a spec.Archive) string {
	return a.String() + " " + strings.TrimRight(strings.ToLower(a.Endpoint), "/")
}

// KeyVars are the variables keys=NAME names.
func KeyVars(name string) (id, secret string) {
	return name + "_ACCESS_KEY_ID", name + "_SECRET_ACCESS_KEY"
}

// EnvChecker checks that the key pair each keys=NAME names is set. The pair is reported under
// its variables, as for env:VAR targets: setup-bucket, run with administrator keys, does not
// need the uploader's.
func (Parser) EnvChecker(getenv func(string) string) func(spec.Archive, spec.Field) {
	checked := map[string]bool{}
	return func(a spec.Archive, r spec.Field) {
		if a.Keys == "" || checked[a.Keys] {
			return
		}
		checked[a.Keys] = true
		id, secret := KeyVars(a.Keys)
		for _, v := range []string{id, secret} {
			if strings.TrimSpace(getenv(v)) == "" {
				r.AddVar(v, "not set, and ARCHIVE_URL's "+r.Name()+" has keys="+a.Keys,
					"set the key pair of this destination's provider: heroku config:set "+v+"=...")
			}
		}
	}
}

func (Parser) SecretVars(a spec.Archive) []string {
	if a.Keys == "" {
		return nil
	}
	id, secret := KeyVars(a.Keys)
	return []string{id, secret}
}
