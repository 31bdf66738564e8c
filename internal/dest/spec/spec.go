// Package spec is what an ARCHIVE_URL destination is once read (Archive), and what a kind of
// destination is (Kind): the reading of its URL and the checks of the variables it names
// (Parser), reported through the configuration check's Reporter; how it opens and probes its
// destinations, from what it needs of the configuration (Env); its share of the memory budget.
// It imports no configuration, so that config and every kind can use it.
package spec

import (
	"net/url"
	"regexp"
)

// Archive is one destination named by ARCHIVE_URL (which may name several, separated by spaces):
// its scheme, which names its kind, and what its kind read of its URL.
type Archive struct {
	Scheme string // "s3", "file", "sftp": the key of its kind in dest's table
	// Settings are the kind's own reading of the URL, a value of the kind's type that only the
	// kind looks into; nil when the URL could not be read.
	Settings Settings
}

// Settings is what every kind's reading of a URL tells the others: where it is, which
// destination it is, and which variables hold its secrets.
type Settings interface {
	// Location names the destination for people and logs (s3://bucket/prefix, file:///dir); it
	// holds no secret (credentials never go in ARCHIVE_URL, only the names of their variables).
	Location() string
	// Identity is the same for two spellings of one destination, different for two destinations.
	Identity() string
	// SecretVars are the variables the destination reads secrets from: its part of the set of
	// secrets.
	SecretVars() []string
}

// String is a's Location; "" for a destination whose URL could not be read.
func (a Archive) String() string {
	if a.Settings == nil {
		return ""
	}
	return a.Settings.Location()
}

// SecretVars are a's secret variables; none for a destination whose URL could not be read.
func (a Archive) SecretVars() []string {
	if a.Settings == nil {
		return nil
	}
	return a.Settings.SecretVars()
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
	// Parse reads u, whose scheme is the kind's, reporting its problems through f; what could be
	// read is returned even then (Settings set), so that the checks depending on it see what the
	// user meant.
	Parse(u *url.URL, f Field) Archive
	// EnvChecker checks the variables the kind's destinations read, as getenv reads them, for
	// one configuration: each variable once, however many destinations read it. a's Settings
	// are nil when its URL could not be read: its scheme alone says it is the kind's.
	EnvChecker(getenv func(string) string) func(a Archive, f Field)
	// GlobalVars are the global variables a takes what its URL leaves out from (AWS_REGION for an
	// s3:// one without region=): the configuration checks those that some destination reads.
	// a's Settings are nil when its URL could not be read: it reads what one without
	// parameters would.
	GlobalVars(a Archive) []string
}

// varNameRE is an environment variable's name as Heroku config vars spell them.
var varNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// IsVarName tells whether s can name a config var: capitals, digits and underscores.
func IsVarName(s string) bool { return varNameRE.MatchString(s) }
