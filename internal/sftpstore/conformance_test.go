package sftpstore

import (
	"os"
	"slices"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The store against a real sshd, each instance in a directory of its own on the server.
func TestConformance(t *testing.T) {
	srv := testenv.StartSSHD(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			dir, err := os.MkdirTemp(srv.Root, "conformance-")
			if err != nil {
				t.Fatal(err)
			}
			o := options(srv)
			o.Dir = dir
			s := dial(t, o)
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: s, Leftovers: func(t *testing.T) []string {
				// Every file on the server that is no listed object: a temporary file of any name.
				l, err := s.List(t.Context(), "")
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, f := range files(t, dir) {
					if !slices.Contains(l.Keys(), f) {
						left = append(left, f)
					}
				}
				return left
			}}
		},
		Want: storetest.Want{Reader: true, Markers: true, Records: true, Stale: true, Remove: true, Close: true},
	})
}
