package herokusim

import (
	"fmt"
	"strings"
	"testing"
	"time"
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

// pages walks a list from the Range first (none: "") through every Next-Range and returns its
// items and the status of each page.
func pages(t *testing.T, url, first string) (items []map[string]any, statuses []int) {
	t.Helper()
	rng := first
	for range 1000 {
		var h []string
		if rng != "" {
			h = []string{"Range", rng}
		}
		a := call(t, "GET", url, token, nil, h...)
		items, statuses = append(items, a.list(t)...), append(statuses, a.status)
		if a.status != 206 {
			return items, statuses
		}
		rng = a.header.Get("Next-Range")
	}
	t.Fatalf("%s: still paging after 1000 pages", url)
	return nil, nil
}

// Every list the Platform API serves pages: 200 items without a Range (a 206 and Next-Range past
// them), Heroku's 1000 at most, and at a lower page limit each list walks whole through its
// Next-Ranges, ranged by id (by ordinal for buildpack installations).
func TestEveryListPages(t *testing.T) {
	s := New(Options{Token: token})
	s.SetStopGrace(100 * time.Millisecond)
	for i := range 250 {
		s.AddDomain("busy", fmt.Sprintf("www%03d.example.com", i))
	}
	platform, _ := Serve(t, s)
	domains := platform + "/apps/busy/domains"
	if a := call(t, "GET", domains, token, nil); a.status != 206 || len(a.list(t)) != 200 || !strings.HasPrefix(a.header.Get("Next-Range"), "id ]") {
		t.Errorf("250 domains without a Range: %d, %d items, Next-Range %q; want 206, 200 and the rest's range", a.status, len(a.list(t)), a.header.Get("Next-Range"))
	}
	if a := call(t, "GET", domains, token, nil, "Range", "id ..; max=1000;"); a.status != 200 || len(a.list(t)) != 251 || a.header.Get("Next-Range") != "" {
		t.Errorf("the CLI's Range: %d, %d items, Next-Range %q; want all 251 at once", a.status, len(a.list(t)), a.header.Get("Next-Range"))
	}
	if got, _ := pages(t, domains, "hostname ..; max=1000, order=desc"); len(got) != 251 || got[0]["hostname"] != "www249.example.com" {
		t.Errorf("by hostname, newest first: %d domains from %v", len(got), got[0]["hostname"])
	}

	const n = 5
	var procs []Process
	var packs []string
	types := map[string]string{}
	for i := range n {
		s.AddAddon("busy", fmt.Sprintf("CACHE%d", i), "heroku-redis:mini")
		procs = append(procs, Process{Type: fmt.Sprintf("worker%d", i), Quantity: 1, Size: "basic"})
		types[procs[i].Type] = "bin/work"
		packs = append(packs, fmt.Sprintf("https://buildpacks.example.com/%d.tgz", i))
	}
	s.Deploy("busy", []byte("slug"), types, "0123456789ab")    // v2
	s.SetConfigVars("busy", map[string]string{"MODE": "busy"}) // v3
	s.SetFormation("busy", procs...)
	s.SetBuildpacks("busy", packs...)
	cache := s.AddAddon("busy", "CACHE", "heroku-redis:mini")
	for i := range n {
		s.Attach(cache, "busy", fmt.Sprintf("CACHE_%d", i), nil)
	}
	for range n {
		if a := call(t, "POST", platform+"/apps/busy/dynos", token, map[string]any{"command": "sleep 60", "attach": false}); a.status != 201 {
			t.Fatalf("start a dyno: %d %s", a.status, a.body)
		}
	}
	t.Cleanup(func() {
		for _, d := range s.Dynos() {
			call(t, "POST", platform+"/apps/busy/dynos/"+d.ID+"/actions/stop", token, nil)
		}
	})
	s.SetPageLimit(2)
	for _, tc := range []struct {
		path, first, key string
		want             int
	}{
		{"/apps/busy/domains", "id ..; max=1000", "id", 251},
		{"/apps/busy/addons", "id ..; max=1000", "id", n + 1},
		{"/apps/busy/addon-attachments", "", "id", 2*n + 1},
		{"/addons/" + cache + "/addon-attachments", "name ..; max=10", "name", n + 1},
		{"/apps/busy/formation", "id ..; max=1000", "id", n},
		{"/apps/busy/buildpack-installations", "ordinal ..; max=1000", "ordinal", n},
		{"/apps/busy/dynos", "id ..; max=1000", "id", n},
		{"/apps/busy/releases", "version ..; max=1000", "version", 3},
	} {
		got, statuses := pages(t, platform+tc.path, tc.first)
		sorted := true
		for i := 1; i < len(got); i++ {
			sorted = sorted && fmt.Sprint(got[i-1][tc.key]) < fmt.Sprint(got[i][tc.key])
		}
		if len(got) != tc.want || len(statuses) != (tc.want+1)/2 || statuses[len(statuses)-1] != 200 || !sorted {
			t.Errorf("%s from %q: %d items in pages %v, in %s order %v; want %d in pages of 2", tc.path, tc.first, len(got), statuses, tc.key, sorted, tc.want)
		}
	}
	if a := call(t, "GET", platform+"/apps/busy/buildpack-installations", token, nil, "Range", "id ..; max=10"); a.status != 400 {
		t.Errorf("buildpack installations by id: %d, want 400 (they have no id)", a.status)
	}
}
