package heroku

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

// EveryRelease reads past the first page: 1,200 releases come in two pages of Heroku's largest
// size, newest first, and the walk stops when asked to.
func TestEveryReleasePages(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	code := sim.Deploy("busy", []byte("slug"), map[string]string{"web": "bin/web"}, "0123456789ab") // v2
	for i := range 1198 {
		sim.SetConfigVars("busy", map[string]string{"N": fmt.Sprint(i)}) // v3..v1200
	}
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := len(sim.Requests())
	var got []Release
	if err := c.EveryRelease(ctx, "busy", func(r Release) bool { got = append(got, r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1200 || got[0].Version != 1200 || !got[0].Current || got[1199].Version != 1 {
		t.Fatalf("%d releases from v%d to v%d, want v1200 down to v1", len(got), got[0].Version, got[len(got)-1].Version)
	}
	if got[1200-code].Version != code || got[1200-code].SlugID == "" {
		t.Errorf("v%d: %+v, want the release with the slug", code, got[1200-code])
	}
	reqs := sim.Requests()[before:]
	if len(reqs) != 2 || reqs[0].Header.Get("Range") != "version ..; max=1000, order=desc" ||
		!strings.HasPrefix(reqs[1].Header.Get("Range"), "version ]201..") {
		for _, r := range reqs {
			t.Logf("%s %s Range %q", r.Method, r.Path, r.Header.Get("Range"))
		}
		t.Errorf("%d requests, want two pages, the second from its Next-Range", len(reqs))
	}

	n := 0
	if err := c.EveryRelease(ctx, "busy", func(Release) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Errorf("stopping at the third release: %d seen, %v", n, err)
	}
	if err := c.EveryRelease(ctx, "nope", func(Release) bool { return true }); !IsNotFound(err) {
		t.Errorf("unknown app: %v, want not found", err)
	}
}

// A server whose Next-Range repeats itself is not followed for ever; the requests carry the
// headers every Platform API request must (the fake checks them).
func TestEveryReleaseStopsOnALoop(t *testing.T) {
	f, c := newFake(t)
	f.on("GET /apps/loop/releases", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Next-Range", r.Header.Get("Range"))
		writeJSON(w, http.StatusPartialContent, []map[string]any{{"id": "r1", "version": 1, "current": true, "status": "succeeded", "slug": nil}})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	err := c.EveryRelease(ctx, "loop", func(Release) bool { n++; return true })
	if err == nil || !strings.Contains(err.Error(), "same range") || n != 1 || f.count("GET /apps/loop/releases") != 1 {
		t.Errorf("%d releases, %d requests, %v; want an error after the first page", n, f.count("GET /apps/loop/releases"), err)
	}
}

// Every list the client reads follows Heroku's pages: with pages of 2, each of an app's lists
// comes whole, in as many requests as it has pages, the first asking for Heroku's largest page
// by id and each next one sending back the Next-Range it was given.
func TestEveryListFollowsPages(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	sim.SetPageLimit(2)
	sim.SetStopGrace(100 * time.Millisecond)
	const app, n = "busy", 5
	var procs []herokusim.Process
	var packs []string
	types := map[string]string{}
	for i := range n {
		sim.AddDomain(app, fmt.Sprintf("www%d.example.com", i))
		sim.AddAddon(app, fmt.Sprintf("CACHE%d", i), "heroku-redis:mini")
		procs = append(procs, herokusim.Process{Type: fmt.Sprintf("worker%d", i), Quantity: 1, Size: "basic"})
		types[procs[i].Type] = "bin/work"
		packs = append(packs, fmt.Sprintf("https://buildpacks.example.com/%d.tgz", n-i)) // not in name order
	}
	sim.Deploy(app, []byte("slug"), types, "0123456789ab")
	sim.SetFormation(app, procs...)
	sim.SetBuildpacks(app, packs...)
	db := sim.AddDatabase(app, "DATABASE", "heroku-postgresql:essential-0", "postgres://u:p@127.0.0.1:5432/busy")
	for i := range n {
		sim.Attach(db, app, fmt.Sprintf("REPLICA%d", i), nil)
	}
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dynos []string
	t.Cleanup(func() {
		for _, id := range dynos {
			c.StopDyno(context.Background(), app, id)
		}
	})
	for range n {
		d, err := c.RunDetached(ctx, app, RunOptions{Command: "sleep 60"})
		if err != nil {
			t.Fatal(err)
		}
		dynos = append(dynos, d.ID)
	}

	for _, tc := range []struct {
		path, first string
		want        int
		read        func() (int, error)
	}{
		{"/apps/busy/domains", idPages, n + 1, func() (int, error) { l, err := c.Domains(ctx, app); return len(l), err }},
		{"/apps/busy/addons", idPages, n + 1, func() (int, error) { l, err := c.Addons(ctx, app); return len(l), err }},
		{"/apps/busy/addon-attachments", idPages, 2*n + 1, func() (int, error) {
			uses, err := c.AddonUses(ctx, app)
			atts := 0
			for _, u := range uses {
				atts += len(u.Attachments)
			}
			return atts, err
		}},
		{"/apps/busy/formation", idPages, n, func() (int, error) { l, err := c.Formation(ctx, app); return len(l), err }},
		{"/apps/busy/buildpack-installations", "", n, func() (int, error) {
			l, err := c.Buildpacks(ctx, app)
			if err == nil && !slices.Equal(l, packs) {
				t.Errorf("buildpacks %q, want them in their order %q", l, packs)
			}
			return len(l), err
		}},
		{"/apps/busy/dynos", idPages, n, func() (int, error) { l, err := c.DynoList(ctx, app); return len(l), err }},
		{"/addons/" + db + "/addon-attachments", idPages, n + 1, func() (int, error) {
			d, err := c.Resolve(ctx, app, "DATABASE_URL")
			return len(d.SourceNames), err
		}},
	} {
		before := len(sim.Requests())
		got, err := tc.read()
		if err != nil || got != tc.want {
			t.Errorf("%s: %d items, %v; want %d", tc.path, got, err, tc.want)
			continue
		}
		var ranges []string
		for _, r := range sim.Requests()[before:] {
			if r.Method == "GET" && r.Path == tc.path {
				ranges = append(ranges, r.Header.Get("Range"))
			}
		}
		pages := (tc.want + 1) / 2
		ok := len(ranges) == pages && ranges[0] == tc.first
		for _, r := range ranges[1:] {
			ok = ok && strings.Contains(r, " ]") && strings.Contains(r, "max=2")
		}
		if !ok {
			t.Errorf("%s: Range headers %q; want %d pages, the first %q, then each Next-Range", tc.path, ranges, pages, tc.first)
		}
	}
}

// PostgresAddons is one paged list of the account's add-ons: each Postgres database once,
// whatever the apps it is attached to, with the app it belongs to and the config vars it sets
// there; other add-ons left out; every page read (pages of 2 here), and no call per app.
func TestPostgresAddonsListsEachDatabaseOnce(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: key})
	platform, _ := herokusim.Serve(t, sim)
	sim.SetPageLimit(2)
	for _, app := range []string{"shop", "core", "web", "blog"} {
		sim.AddApp(app)
	}
	want := map[string]string{}
	want[sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://u:p@127.0.0.1:1/shop")] = "shop DATABASE_URL"
	want[sim.AddDatabase("shop", "HEROKU_POSTGRESQL_PINK", "heroku-postgresql:essential-0", "postgres://u:p@127.0.0.1:1/pink")] = "shop HEROKU_POSTGRESQL_PINK_URL"
	core := sim.AddDatabase("core", "DATABASE", "heroku-postgresql:standard-2", "postgres://u:p@127.0.0.1:1/core")
	want[core] = "core DATABASE_URL"
	sim.Attach(core, "web", "DATABASE", nil) // shared with web: still one database
	sim.Attach(core, "blog", "CORE_DB", nil)
	want[sim.AddDatabase("blog", "DATABASE", "heroku-postgresql:essential-1", "postgres://u:p@127.0.0.1:1/blog")] = "blog DATABASE_URL"
	sim.AddAddon("shop", "REDIS", "heroku-redis:mini")
	sim.AddAddon("web", "PAPERTRAIL", "papertrail:choklad")
	c := New(Options{APIKey: key, PlatformURL: platform})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := len(sim.Requests())
	got, err := c.PostgresAddons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, a := range got {
		if _, dup := seen[a.ID]; dup {
			t.Errorf("%s (%s) listed twice", a.Name, a.ID)
		}
		seen[a.ID] = a.App + " " + strings.Join(a.ConfigVars, " ")
		if !strings.HasPrefix(a.Plan, PostgresPlanPrefix) || a.Name == "" {
			t.Errorf("listed %+v", a)
		}
	}
	if !maps.Equal(seen, want) {
		t.Errorf("listed %v, want %v", seen, want)
	}
	reqs := sim.Requests()[before:]
	for _, r := range reqs {
		if r.Path != "/addons" {
			t.Errorf("%s %s: want only GET /addons", r.Method, r.Path)
		}
	}
	if len(reqs) != 3 || reqs[0].Header.Get("Range") != idPages { // 6 add-ons, 2 a page
		t.Errorf("%d requests (first Range %q), want the 3 pages of 6 add-ons", len(reqs), reqs[0].Header.Get("Range"))
	}
}
