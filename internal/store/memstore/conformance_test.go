package memstore

import (
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			m := &Store{}
			return storetest.Instance{Store: m, Caps: m.Caps(), Reader: m}
		},
		Want: storetest.Want{Reader: true, Markers: true, Records: true, Remove: true},
	})
}
