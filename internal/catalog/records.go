package catalog

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
	// Drill is set when pgoffsite drill made the verification, restoring into a throwaway
	// Heroku Postgres add-on and running DRILL_CHECKS there.
	Drill *Drill `json:"drill,omitempty"`
}

// Drill is what a restore drill did beyond a verification.
type Drill struct {
	Plan  string `json:"plan"`  // e.g. heroku-postgresql:essential-0
	Addon string `json:"addon"` // the throwaway add-on's name
	// Seconds spent waiting for the add-on, restoring and counting, and holding the add-on
	// (from its creation to its deletion).
	ProvisionSeconds float64      `json:"provision_seconds"`
	RestoreSeconds   float64      `json:"restore_seconds"`
	HeldSeconds      float64      `json:"held_seconds"`
	CostUSD          float64      `json:"cost_usd"`
	Checks           []DrillCheck `json:"checks"`
	// Deleted tells that the add-on was deleted after the drill (false: --keep, or the
	// deletion failed).
	Deleted bool `json:"deleted"`
}

// DrillCheck is one DRILL_CHECKS statement and its answer.
type DrillCheck struct {
	SQL    string `json:"sql"`
	Passed bool   `json:"passed"`
	Error  string `json:"error,omitempty"`
}

// VerifiedSuffix ends every verification record's key. The reader policy lets the verifier's
// credentials write keys with this suffix and no other.
const VerifiedSuffix = ".verified.json"

// VerifiedKey is the verification record's key beside a dump key: <name>.verified.json beside
// <name>.dump (and <name>.json), <name>.age.verified.json beside <name>.dump.age.
func VerifiedKey(dumpKey string) string {
	return strings.TrimSuffix(ManifestKey(dumpKey), ".json") + VerifiedSuffix
}
