package sftpstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Listing one app's archives reads only the directories under its prefix: a server holding
// years of another app's archives costs it nothing. The bytes the client sends through a proxy
// count its requests (each directory is an open, reads and a close); the old walk read the whole
// tree for every prefix, as many requests as listing everything.
func TestListWalksOnlyThePrefix(t *testing.T) {
	srv := testenv.StartSSHD(t)
	mk := func(rel string, size int, at time.Time) {
		p := filepath.Join(srv.Root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	// A year of daily archives of two other apps, one of whose names begins like the listed one.
	day := time.Date(2026, 1, 1, 2, 15, 0, 0, time.UTC)
	for _, app := range []string{"other", "shopfront"} {
		for d := range 365 {
			at := day.AddDate(0, 0, d)
			dir := fmt.Sprintf("%s/DATABASE/%s", app, at.Format("2006/01/02"))
			mk(dir+"/a.dump", 1, at)
			mk(dir+"/a.json", 1, at)
		}
	}
	stored := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	mk("shop/DATABASE/2026/03/01/b001.dump", 1000, stored)
	mk("shop/DATABASE/2026/03/01/b001.json", 10, stored)
	mk("shop/DATABASE/2026/03/02/.b002.dump.tmp-00", 5, stored) // an upload under way
	mk("shop/DATABASE/2026/03/02/b002.dump", 2000, stored)

	f := startFreezer(t, srv.Addr())
	s := dial(t, viaProxy(srv, f.port()))
	ctx := context.Background()
	list := func(prefix string) (string, int64) {
		t.Helper()
		before := f.sent.Load()
		l, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		var got []string
		for _, o := range l.Objects {
			got = append(got, fmt.Sprintf("%s %d %s", o.Key, o.Size, o.Modified.UTC().Format(time.RFC3339)))
		}
		if l.Versions {
			t.Errorf("List %q claims versions", prefix)
		}
		return strings.Join(got, "\n"), f.sent.Load() - before
	}

	_, everything := list("")
	got, shop := list("shop/")
	want := "shop/DATABASE/2026/03/01/b001.dump 1000 2026-03-04T05:06:07Z\nshop/DATABASE/2026/03/01/b001.json 10 2026-03-04T05:06:07Z\nshop/DATABASE/2026/03/02/b002.dump 2000 2026-03-04T05:06:07Z"
	if got != want {
		t.Errorf("List shop/:\n%s\nwant\n%s", got, want)
	}
	if shop*20 > everything {
		t.Errorf("listing shop/ sent %d bytes of requests, listing everything %d: the listing walks other apps' directories", shop, everything)
	}
	got, day2 := list("shop/DATABASE/2026/03/02/b")
	if got != "shop/DATABASE/2026/03/02/b002.dump 2000 2026-03-04T05:06:07Z" {
		t.Errorf("List of one day:\n%s", got)
	}
	if day2 >= shop {
		t.Errorf("listing one day sent %d bytes, the whole app %d: it starts from the root", day2, shop)
	}
	if got, _ := list("sh"); strings.Count(got, "\n")+1 != 3+365*2 {
		t.Errorf("List sh: %d objects, want shop's and shopfront's", strings.Count(got, "\n")+1)
	}
}
