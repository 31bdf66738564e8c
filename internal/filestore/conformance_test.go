package filestore

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			s, dir := newStore(t)
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: s, Leftovers: func(t *testing.T) []string {
				// Every file that is no listed object: a temporary file of any name.
				l, err := s.List(t.Context(), "")
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, e := range entries(t, dir) {
					if !slices.Contains(l.Keys(), filepath.ToSlash(e)) {
						left = append(left, e)
					}
				}
				return left
			}}
		},
		Want: storetest.Want{Reader: true, Markers: true, Records: true, Stale: true, Remove: true},
	})
}
