package sftpstore

import (
	"os"
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
				return storetest.Unlisted(t, s, files(t, dir))
			}}
		},
		Want: storetest.Want{Reader: true, Markers: true, Records: true, Stale: true, Remove: true, Close: true},
	})
}
