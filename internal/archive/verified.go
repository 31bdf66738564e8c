package archive

import (
	"strings"
	"time"
)

// Verification is what `pgoffsite verify` found when it last checked an archive, kept beside
// its manifest (VerifiedKey) so that `pgoffsite status` can show it without reading the dump.
type Verification struct {
	Key        string    `json:"key"` // the dump's key
	Backup     string    `json:"backup"`
	VerifiedAt time.Time `json:"verified_at"`
	Passed     bool      `json:"passed"`
	Error      string    `json:"error,omitempty"`
	Tables     int       `json:"tables"`
	Rows       int64     `json:"rows"`
	// Restored tells that the archive was restored into a scratch database and its rows counted.
	Restored         bool   `json:"restored"`
	PgoffsiteVersion string `json:"pgoffsite_version"`
}

// VerifiedSuffix ends every verification record's key. The reader policy lets the verifier's
// credentials write keys with this suffix and no other.
const VerifiedSuffix = ".verified.json"

// VerifiedKey is the verification record's key beside a dump key: <name>.verified.json beside
// <name>.dump (and <name>.json), <name>.age.verified.json beside <name>.dump.age.
func VerifiedKey(dumpKey string) string {
	return strings.TrimSuffix(ManifestKey(dumpKey), ".json") + VerifiedSuffix
}
