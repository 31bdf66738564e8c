// Package spec is what an ARCHIVE_URL destination is once read (Archive), and what each kind of
// destination gives the configuration check: the reading of its URL and the checks of the
// variables it names (Parser), reported through the check's Reporter. It imports nothing of
// pgoffsite, so that config and every kind can use it.
package spec

import (
	"fmt"
	"net/url"
	"regexp"
)

// Archive is one destination named by ARCHIVE_URL (which may name several, separated by spaces).
type Archive struct {
	Scheme string // "s3", "file" or "sftp"
	Bucket string // s3
	Prefix string // s3, without leading, trailing or doubled slashes
	Dir    string // file: absolute and clean; sftp: the absolute directory on the server

	// s3 query parameters, for a provider other than AWS; empty (nil) means the global setting
	// (AWS_ENDPOINT_URL_S3, AWS_REGION, S3_FORCE_PATH_STYLE, S3_STORAGE_CLASS, S3_SSE).
	Endpoint     string // endpoint=https://s3.eu-central-003.backblazeb2.com
	Region       string // region=
	PathStyle    *bool  // path_style=true
	StorageClass string // storage_class=
	SSE          string // sse=
	// Keys names the pair of variables holding this destination's credentials (keys=B2 reads
	// B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY); empty means the default AWS chain.
	Keys string
	// dest resolves the empty ones against Config's global settings (Region, S3Endpoint,
	// S3ForcePathStyle, S3StorageClass, S3SSE; S3SSEKMSKeyID is the key of every aws:kms one):
	// config leaves them empty so that a destination says only what ARCHIVE_URL gave it.

	// sftp
	User   string
	Host   string
	Port   int    // 22 when the URL gives none
	KeyVar string // the variable holding the private key: SFTP_PRIVATE_KEY, or key=NAME
}

// String names the destination for people and logs; it holds no secret (credentials never go
// in ARCHIVE_URL, only the names of the variables that hold them).
func (a Archive) String() string {
	switch a.Scheme {
	case "s3":
		s := "s3://" + a.Bucket
		if a.Prefix != "" {
			s += "/" + a.Prefix
		}
		return s
	case "file":
		return "file://" + a.Dir
	case "sftp":
		host := a.Host
		if a.Port != 0 && a.Port != 22 {
			host = fmt.Sprintf("%s:%d", a.Host, a.Port)
		}
		return "sftp://" + a.User + "@" + host + a.Dir
	}
	return ""
}

// Reporter collects the problems of the configuration; the configuration check implements it,
// scrubbing secrets from every message, and checks the values some destination parameters
// share with global variables (S3_STORAGE_CLASS, S3_SSE, AWS_ENDPOINT_URL_S3).
type Reporter interface {
	// Add reports a problem of the variable name.
	Add(name, msg, fix string)
	// Quote quotes a value for a message, without the secrets.
	Quote(s string) string
	// URL checks an http(s) URL of variable name (what says which part of it): "" when refused.
	URL(name, what, raw, fix string) string
	// StorageClass and SSE check an S3 storage class and encryption mode, returning them as S3
	// spells them.
	StorageClass(name, what, raw string) string
	SSE(name, what, raw string) string
}

// Parser is what a kind of destination tells the configuration check about its URLs.
type Parser interface {
	// TakesUser tells whether the kind's URLs carry a user name (sftp://user@host): Parse then
	// reports a password given with it. The other kinds' user names are refused as credentials.
	TakesUser() bool
	// TakesQuery tells whether the kind's URLs carry parameters (?name=value).
	TakesQuery() bool
	// Parse reads u, whose scheme is the kind's, reporting its problems through f; what could be read is
	// returned even then, so that the checks depending on it see what the user meant.
	Parse(u *url.URL, f Field) Archive
	// Identity is the same for two spellings of one destination, different for two destinations.
	Identity(a Archive) string
	// EnvChecker checks the variables the kind's destinations read, as getenv reads them, for
	// one configuration: each variable once, however many destinations read it.
	EnvChecker(getenv func(string) string) func(a Archive, f Field)
	// SecretVars are the variables a reads secrets from: its kind's part of the set of secrets.
	SecretVars(a Archive) []string
}

// varNameRE is an environment variable's name as Heroku config vars spell them.
var varNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// IsVarName tells whether s can name a config var: capitals, digits and underscores.
func IsVarName(s string) bool { return varNameRE.MatchString(s) }
