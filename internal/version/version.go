// Package version holds pgoffsite's version, recorded in every manifest and User-Agent.
package version

import "runtime/debug"

// Version is set at build time with -ldflags "-X github.com/pgoffsite/pgoffsite/internal/version.Version=…";
// otherwise it names the release line and, when the build recorded it, the commit.
var Version = "0.1.0-dev"

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && Version == "0.1.0-dev" {
			Version += "+" + s.Value[:12]
		}
	}
}

// UserAgent names this program in HTTP requests.
func UserAgent() string { return "pgoffsite/" + Version }
