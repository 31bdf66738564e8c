package filestore

import (
	"path/filepath"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			s, dir := newStore(t)
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: s, Leftovers: func(t *testing.T) []string {
				return storetest.Unlisted(t, s, slashed(entries(t, dir)))
			}}
		},
		Want: storetest.Want{Reader: true, Markers: true, Records: true, Stale: true, Remove: true},
	})
}

// slashed writes paths with slashes, as keys are.
func slashed(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.ToSlash(p)
	}
	return out
}
