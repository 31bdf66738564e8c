package heroku

import (
	"context"
	"fmt"
	"net/http"
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
