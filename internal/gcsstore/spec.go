package gcsstore

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// Scheme names the kind in ARCHIVE_URL: gs://BUCKET/optional/prefix.
const Scheme = "gs"

const (
	// DefaultCredentialsVar holds the service account key's JSON of gs:// destinations that
	// name no keys=.
	DefaultCredentialsVar = "GOOGLE_CREDENTIALS"
	// ApplicationCredentialsVar is the path of a key file, as Google's tools read it.
	ApplicationCredentialsVar = "GOOGLE_APPLICATION_CREDENTIALS"
	// EmulatorHostVar points the client library at an emulator (host:port), without
	// credentials, as Google's tools read it.
	EmulatorHostVar = "STORAGE_EMULATOR_HOST"
)

// Settings are a Google Cloud Storage destination's, as its URL gives them.
type Settings struct {
	Bucket   string
	Prefix   string // without leading or trailing slash
	Endpoint string // endpoint=: an emulator's or a private endpoint's URL; "" = Google's
	// CredentialsVar holds the key's JSON: GOOGLE_CREDENTIALS, or NAME_CREDENTIALS with keys=NAME.
	CredentialsVar string
}

func (s Settings) Location() string {
	if s.Prefix == "" {
		return "gs://" + s.Bucket
	}
	return "gs://" + s.Bucket + "/" + s.Prefix
}

// Identity: bucket names are lower case, and one bucket is one destination wherever it is
// reached from.
func (s Settings) Identity() string { return s.Location() }

func (s Settings) SecretVars() []string {
	if s.CredentialsVar == "" {
		return nil
	}
	return []string{s.CredentialsVar}
}

// Archive is the destination s describes.
func (s Settings) Archive() spec.Archive { return spec.Archive{Scheme: Scheme, Settings: s} }

// SettingsOf are a's settings; ok is false for another kind's destination.
func SettingsOf(a spec.Archive) (Settings, bool) {
	s, ok := a.Settings.(Settings)
	return s, ok
}

// Parser reads gs://BUCKET/prefix destinations and checks the credentials they name.
type Parser struct{}

func (Parser) TakesUser() bool  { return false }
func (Parser) TakesQuery() bool { return true }

// GlobalVars: a destination without keys= falls back on Google's own variables.
func (Parser) GlobalVars(a spec.Archive) []string {
	s, _ := SettingsOf(a)
	if s.CredentialsVar != "" && s.CredentialsVar != DefaultCredentialsVar {
		return []string{EmulatorHostVar}
	}
	return []string{DefaultCredentialsVar, ApplicationCredentialsVar, EmulatorHostVar}
}

const form = "write gs://BUCKET/optional/prefix, e.g. gs://acme-pg-archives/pgoffsite"

func (Parser) Parse(u *url.URL, f spec.Field) spec.Archive {
	s := Settings{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), CredentialsVar: DefaultCredentialsVar}
	switch {
	case s.Bucket == "":
		f.Add(f.Shown()+" names no bucket", form)
	case !validBucket(s.Bucket):
		f.Add(f.Shown()+" names a bucket Google Cloud Storage cannot have", form+": 3-63 lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
	}
	if strings.Contains(s.Prefix, "//") {
		f.Add(f.Shown()+" has an empty path segment", form)
	}
	q := f.Query(u, []string{"keys", "endpoint"},
		"use only keys=NAME (the key's JSON is then in NAME_CREDENTIALS) and endpoint=URL (an emulator's)")
	if v, ok := q["keys"]; ok {
		if !spec.IsVarName(v) {
			f.Add("keys= does not name a variable prefix",
				"write keys=NAME with NAME in capitals, digits and underscores, e.g. keys=GCS: the key's JSON is then in GCS_CREDENTIALS")
		} else {
			s.CredentialsVar = v + "_CREDENTIALS"
		}
	}
	if v, ok := q["endpoint"]; ok {
		s.Endpoint = strings.TrimRight(f.URL("endpoint=", v, "write endpoint=http://HOST:PORT, e.g. an emulator's"), "/")
	}
	return s.Archive()
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 {
		return false
	}
	for i, c := range b {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(b)-1 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}

// EnvChecker checks each destination's credentials once: the key's JSON must be a service
// account key (never quoted: it holds a private key).
func (Parser) EnvChecker(getenv func(string) string) func(spec.Archive, spec.Field) {
	checked := map[string]bool{}
	return func(a spec.Archive, f spec.Field) {
		s, _ := SettingsOf(a)
		name := s.CredentialsVar
		if name == "" || checked[name] {
			return
		}
		checked[name] = true
		text := getenv(name)
		fix := "create a key for the uploader's service account (`gcloud iam service-accounts keys create key.json --iam-account=SA_EMAIL`), then heroku config:set " +
			name + "=\"$(cat key.json)\" and delete key.json; grant it roles/storage.objectCreator on the bucket (docs/providers.md, Google Cloud Storage)"
		if strings.TrimSpace(text) == "" {
			// Google's own fallbacks, for the default variable only: a key file, an emulator.
			if name == DefaultCredentialsVar && (getenv(ApplicationCredentialsVar) != "" || getenv(EmulatorHostVar) != "") || s.Endpoint != "" {
				return
			}
			msg := "not set, and ARCHIVE_URL has a gs:// destination"
			if name != DefaultCredentialsVar {
				msg = "not set (ARCHIVE_URL's " + f.Name() + " has keys=" + strings.TrimSuffix(name, "_CREDENTIALS") + ")"
			}
			f.AddVar(name, msg, fix)
			return
		}
		if problem := checkKey([]byte(text)); problem != "" {
			f.AddVar(name, problem, "paste the whole key file gcloud wrote, braces included: "+fix)
		}
	}
}

// checkKey says what is wrong with a service account key's JSON, "" when nothing is. It quotes
// nothing of it.
func checkKey(b []byte) string {
	var k struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	switch {
	case json.Unmarshal(b, &k) != nil:
		return "does not hold JSON"
	case k.Type != "service_account":
		return "does not hold a service account key (its \"type\" is not \"service_account\")"
	case k.ClientEmail == "" || k.PrivateKey == "":
		return "holds a service account key without client_email or private_key"
	}
	return ""
}
