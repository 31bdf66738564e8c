package herokusim

import (
	"fmt"
	"testing"
)

// versions lists the release versions of a page, in the order answered.
func versions(t *testing.T, a answer) []int {
	t.Helper()
	var out []int
	for _, r := range a.list(t) {
		out = append(out, int(r["version"].(float64)))
	}
	return out
}

// Releases page as Heroku pages lists: 200 by default, 206 and Next-Range when some are left
// out, and the Next-Range sent back as Range gives the next page, until a 200.
func TestReleasesPage(t *testing.T) {
	s := New(Options{Token: token})
	s.AddApp("busy")
	for i := range 449 {
		s.SetConfigVars("busy", map[string]string{"N": fmt.Sprint(i)}) // v2..v450
	}
	platform, _ := Serve(t, s)
	url := platform + "/apps/busy/releases"

	all := call(t, "GET", url, token, nil)
	if got := versions(t, all); all.status != 206 || len(got) != 200 || got[0] != 1 || got[199] != 200 ||
		all.header.Get("Next-Range") != "version ]200..; max=200, order=asc" || all.header.Get("Content-Range") != "version 1..200" {
		t.Fatalf("no Range: %d, %d releases from v%d, Next-Range %q, Content-Range %q", all.status, len(got), got[0],
			all.header.Get("Next-Range"), all.header.Get("Content-Range"))
	}

	// Newest first, 150 a page, the way restore-app asks (heroku-go writes "max=150,order=desc").
	var seen []int
	rng := "version ..; max=150,order=desc"
	for pages := 0; ; pages++ {
		if pages == 5 {
			t.Fatalf("still paging after %d pages", pages)
		}
		a := call(t, "GET", url, token, nil, "Range", rng)
		seen = append(seen, versions(t, a)...)
		if a.status == 200 {
			if a.header.Get("Next-Range") != "" {
				t.Errorf("the last page has Next-Range %q", a.header.Get("Next-Range"))
			}
			break
		}
		if a.status != 206 || a.header.Get("Next-Range") == "" {
			t.Fatalf("page %d: %d, Next-Range %q", pages, a.status, a.header.Get("Next-Range"))
		}
		rng = a.header.Get("Next-Range")
	}
	if len(seen) != 450 || seen[0] != 450 || seen[449] != 1 {
		t.Fatalf("pages gave %d releases from v%d to v%d, want v450 down to v1", len(seen), seen[0], seen[len(seen)-1])
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != seen[i-1]-1 {
			t.Fatalf("v%d follows v%d", seen[i], seen[i-1])
		}
	}

	// What fits in one page is a 200; max is capped at 1000; bounds and exclusions hold.
	cases := []struct {
		rng         string
		status      int
		first, last int
		n           int
	}{
		{"version ..; max=1000, order=desc", 200, 450, 1, 450},
		{"version ..; max=5000", 200, 1, 450, 450},
		{"version 10..20; max=200", 200, 10, 20, 11},
		{"version ]10..20[; max=200", 200, 11, 19, 9},
		{"version ]300..; max=10, order=desc", 206, 299, 290, 10},
		{"version 5..; max=3", 206, 5, 7, 3},
	}
	for _, c := range cases {
		a := call(t, "GET", url, token, nil, "Range", c.rng)
		got := versions(t, a)
		if a.status != c.status || len(got) != c.n || got[0] != c.first || got[len(got)-1] != c.last {
			t.Errorf("Range %q: %d, %d releases v%d..v%d; want %d, %d v%d..v%d", c.rng, a.status, len(got), got[0], got[len(got)-1],
				c.status, c.n, c.first, c.last)
		}
	}
	for _, bad := range []string{"version; max=10", "version ..; max=0", "version ..; order=up"} {
		if a := call(t, "GET", url, token, nil, "Range", bad); a.status != 400 || a.obj(t)["id"] != "bad_request" {
			t.Errorf("Range %q: %d %s, want 400 bad_request", bad, a.status, a.body)
		}
	}
}
