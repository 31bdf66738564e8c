package s3store

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3name"
)

// Scheme names the kind in ARCHIVE_URL: s3://bucket/optional/prefix.
const Scheme = "s3"

// The global variables of S3 destinations: the settings of every s3:// destination that its own
// parameters leave out.
const (
	RegionVar        = "AWS_REGION"
	DefaultRegionVar = "AWS_DEFAULT_REGION" // when AWS_REGION is unset
	// EndpointVar is the endpoint (AWS_ENDPOINT_URL when unset), for display: the SDK reads
	// both itself.
	EndpointVar     = "AWS_ENDPOINT_URL_S3"
	PathStyleVar    = "S3_FORCE_PATH_STYLE"
	StorageClassVar = "S3_STORAGE_CLASS"
	SSEVar          = "S3_SSE"
	SSEKMSKeyIDVar  = "S3_SSE_KMS_KEY_ID" // the key of every aws:kms destination
	// KeyIDVar is the default credential chain's: a destination without keys=NAME uses it.
	KeyIDVar = "AWS_ACCESS_KEY_ID"
)

// Settings are an S3 destination's, as its URL gives them.
type Settings struct {
	Bucket string
	Prefix string // without leading, trailing or doubled slashes

	// Query parameters, for a provider other than AWS; empty (nil) means the global setting
	// (AWS_ENDPOINT_URL_S3, AWS_REGION, S3_FORCE_PATH_STYLE, S3_STORAGE_CLASS, S3_SSE), which the
	// kind applies when it opens the destination, so that the settings say only what ARCHIVE_URL
	// gave.
	Endpoint     string // endpoint=https://s3.eu-central-003.backblazeb2.com
	Region       string // region=
	PathStyle    *bool  // path_style=true
	StorageClass string // storage_class=
	SSE          string // sse=
	// Checksum is checksum=: what each upload request carries for the store to check; ""
	// is auto.
	Checksum Checksum
	// Keys names the pair of variables holding this destination's credentials (keys=B2 reads
	// B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY); empty means the default AWS chain.
	Keys string
}

func (s Settings) Location() string {
	if s.Prefix == "" {
		return "s3://" + s.Bucket
	}
	return "s3://" + s.Bucket + "/" + s.Prefix
}

// Identity: the same bucket and prefix at another endpoint is another copy.
func (s Settings) Identity() string {
	return s.Location() + " " + strings.TrimRight(strings.ToLower(s.Endpoint), "/")
}

func (s Settings) SecretVars() []string {
	if s.Keys == "" {
		return nil
	}
	id, secret := KeyVars(s.Keys)
	return []string{id, secret}
}

// Archive is the destination s describes.
func (s Settings) Archive() spec.Archive { return spec.Archive{Scheme: Scheme, Settings: s} }

// SettingsOf are a's settings; ok is false when a is no S3 destination (or one whose URL could
// not be read). The commands that work on buckets alone pick their destination with it.
func SettingsOf(a spec.Archive) (s Settings, ok bool) {
	s, ok = a.Settings.(Settings)
	return s, ok
}

// Parser reads s3://bucket/optional/prefix destinations and their parameters.
type Parser struct{}

// regionRE is a region as providers spell them: eu-west-1, eu-central-003, auto.
var regionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,39}$`)

// params are the query parameters an s3:// destination may carry, in the order the fix lists them
// (keys=NAME last but for checksum=, which follows its explanation).
var params = []string{"endpoint", "region", "path_style", "storage_class", "sse", "checksum", "keys"}

// GlobalVars: each parameter a destination leaves out is a global variable's.
func (Parser) GlobalVars(d spec.Archive) []string {
	a, _ := SettingsOf(d)
	var vars []string
	for _, v := range []struct {
		unset bool
		names []string
	}{
		{a.Endpoint == "", []string{EndpointVar, "AWS_ENDPOINT_URL"}},
		{a.Region == "", []string{RegionVar, DefaultRegionVar}},
		{a.PathStyle == nil, []string{PathStyleVar}},
		{a.StorageClass == "", []string{StorageClassVar}},
		{a.SSE == "", []string{SSEVar}},
		{a.SSE == "aws:kms", []string{SSEKMSKeyIDVar}},
		{a.Keys == "", []string{KeyIDVar, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}},
	} {
		if v.unset {
			vars = append(vars, v.names...)
		}
	}
	return vars
}

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return true }

func (Parser) Parse(u *url.URL, r spec.Field) spec.Archive {
	a := Settings{Bucket: u.Host, Prefix: cleanPrefix(u.Path)}
	if u.Host == "" {
		r.Add(r.Shown()+" names no bucket", "write s3://bucket/optional/prefix (two slashes before the bucket)")
	} else if why := s3name.BucketProblem(u.Host); why != "" {
		r.Add(r.Quote(u.Host)+" is not a valid S3 bucket name: "+why,
			"use the bucket's name as the S3 console shows it (3-63 lowercase letters, digits, dots and dashes)")
	}
	named := slices.DeleteFunc(slices.Clone(params), func(p string) bool { return p == "checksum" })
	fix := "use only " + strings.Join(named, "=, ") + "=NAME (credentials in NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY) and checksum=, " +
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
	if v, ok := q["checksum"]; ok {
		if c := Checksum(strings.ToLower(v)); slices.Contains(Checksums, c) {
			a.Checksum = c
		} else {
			// Not quoted: a query value may be a pasted secret.
			r.Add("checksum= is none of auto, sha256, crc32c, md5, none",
				"write checksum=md5 for a provider that refuses the x-amz-checksum headers, or leave it out (auto)")
		}
	}
	if v, ok := q["keys"]; ok {
		a.Keys = v
		if !spec.IsVarName(v) {
			r.Add("keys= does not name variables",
				"write keys=NAME with NAME in capitals, digits and underscores, e.g. keys=B2 to read B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY (never the keys themselves)")
			a.Keys = ""
		}
	}
	return a.Archive()
}

// cleanPrefix drops leading, trailing and doubled slashes: "/a//b/" is "a/b".
func cleanPrefix(p string) string {
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	return strings.Join(parts, "/")
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
	return func(d spec.Archive, r spec.Field) {
		a, _ := SettingsOf(d)
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
