// Package bundle is the app bundle: an app's current release archived under
// <app>/_app/v<release>/ — slug.tgz (the slug as Heroku serves it), config.age (the config values,
// only encrypted to ARCHIVE_RECIPIENTS) and release.json (everything else, written last: it marks
// the release as archived) — and the rules that put one back with restore-app. A release archived
// before ARCHIVE_RECIPIENTS was set is completed by a later run: config.age, then
// release-config.json, the record naming them (stores never replace an object, so release.json
// stays as it was).
//
// Anyone holding the uploader's keys can write new objects into the bucket, so restore-app trusts
// nothing a bundle says until its parts are checked against each other: every key stays under the
// bundle's own APP/_app/vN/ (a slug under an earlier release's), the config values carry inside
// their encryption the release they belong to (binding.go), a BUNDLE_SIGNING_KEY signs release.json
// and the values (sign.go), the slug's bytes are checked against the recorded checksum before use,
// and what would be deployed is shown and held to conservative rules before anything changes
// (plan.go).
package bundle

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// Database stands for the app's runtime where results name a database.
const Database = "_app"

// The objects of a bundle, under APP/_app/vN/.
const (
	SlugName    = "slug.tgz"
	ConfigName  = "config.age"
	ReleaseName = "release.json"
	// CompletedName is the record of a release whose release.json was written without config
	// values, written once they are archived; it names them, and restore-app prefers it.
	CompletedName = "release-config.json"
)

// Version is the release.json format this pgoffsite writes. 2: the config values are bound to
// their release inside the encryption, and release.json and the values may be signed. 1 (before):
// the values alone, bound to nothing.
const Version = 2

// Record is release.json. It holds config var names, never their values.
type Record struct {
	BundleVersion  int               `json:"bundle_version"`
	App            string            `json:"app"`
	Release        int               `json:"release"`
	ReleaseID      string            `json:"release_id"`
	Description    string            `json:"description"`
	Region         string            `json:"region"`
	Space          string            `json:"space,omitempty"`
	Stack          string            `json:"stack"`
	Buildpacks     []string          `json:"buildpacks"`
	ProcessTypes   map[string]string `json:"process_types"`
	Formation      []heroku.Process  `json:"formation"`
	Addons         []heroku.AddonUse `json:"addons"`
	Domains        []heroku.Domain   `json:"domains"`
	ConfigVarNames []string          `json:"config_var_names"`
	// ConfigValues is where the values are, encrypted; nil when ARCHIVE_RECIPIENTS was not set.
	ConfigValues     *Config   `json:"config_values"`
	Slug             *Slug     `json:"slug"`
	ArchivedAt       time.Time `json:"archived_at"`
	PgoffsiteVersion string    `json:"pgoffsite_version"`
	// Signature is BUNDLE_SIGNING_KEY's over everything above (sign.go); nil when unsigned.
	Signature *Signature `json:"signature,omitempty"`
}

// Slug is the slug the release runs; FromRelease is the release whose bundle holds it (an
// earlier one for a release that changed only config).
type Slug struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	FromRelease int    `json:"from_release"`
	Bytes       int64  `json:"bytes"`
	Checksum    string `json:"checksum"` // "SHA256:<hex>", as Heroku gives it
	Commit      string `json:"commit,omitempty"`
	Stack       string `json:"stack"`
}

// Config names the encrypted config values and whom they are encrypted to.
type Config struct {
	Key        string               `json:"key"`
	Recipients []agecrypt.Recipient `json:"recipients"`
}

// Key is the key of a bundle's object name (SlugName, ConfigName, ReleaseName) for app's release.
func Key(app string, release int, name string) string {
	return fmt.Sprintf("%s/%s/v%d/%s", app, Database, release, name)
}

// releaseKeyRE is a record's key (release.json or release-config.json): a Heroku app name, and a
// release number without leading zeros.
var releaseKeyRE = regexp.MustCompile(`^([a-z][a-z0-9-]{2,29})/` + Database + `/v([1-9][0-9]{0,8})/(` +
	regexp.QuoteMeta(ReleaseName) + `|` + regexp.QuoteMeta(CompletedName) + `)$`)

// ErrNotReleaseKey is a key that is not a bundle's record.
var ErrNotReleaseKey = errors.New("not a bundle's release.json key (APP/_app/vN/release.json or release-config.json, as the bundle's log line names it)")

// Completes reports whether key is a release's completed record (release-config.json), which
// restore-app takes over that release's release.json.
func Completes(key string) bool { return strings.HasSuffix(key, "/"+CompletedName) }

// ParseKey reads the app and release out of a record's key (release.json or release-config.json).
func ParseKey(key string) (app string, release int, err error) {
	m := releaseKeyRE.FindStringSubmatch(key)
	if m == nil {
		return "", 0, ErrNotReleaseKey
	}
	release, _ = strconv.Atoi(m[2])
	return m[1], release, nil
}
