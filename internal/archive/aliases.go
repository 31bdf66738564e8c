package archive

import "github.com/pgoffsite/pgoffsite/internal/catalog"

// Temporary aliases for packages that still name the bucket layout and records through archive;
// they now live in catalog, and these go once those packages import it.
type (
	Manifest     = catalog.Manifest
	Meta         = catalog.Meta
	Origin       = catalog.Origin
	HerokuOrigin = catalog.HerokuOrigin
	DumpOrigin   = catalog.DumpOrigin
	Verification = catalog.Verification
	Drill        = catalog.Drill
	DrillCheck   = catalog.DrillCheck
)

var (
	Key         = catalog.Key
	ParseKey    = catalog.ParseKey
	ManifestKey = catalog.ManifestKey
	VerifiedKey = catalog.VerifiedKey
	IsEncrypted = catalog.IsEncrypted
)

const VerifiedSuffix = catalog.VerifiedSuffix
