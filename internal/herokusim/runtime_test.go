package herokusim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A config change releases the slug the app runs, as Heroku's config releases carry the
// deploy's slug id; the release before any deploy has none.
func TestConfigReleasesKeepTheSlug(t *testing.T) {
	s := New(Options{Token: token})
	s.AddApp("shop")
	s.SetConfigVars("shop", map[string]string{"A": "1"}) // v2: nothing deployed yet
	s.Deploy("shop", []byte("slug"), map[string]string{"web": "bin/web"}, "0123456789ab")
	s.SetConfigVars("shop", map[string]string{"A": "2"}) // v4
	platform, _ := Serve(t, s)
	rels := call(t, "GET", platform+"/apps/shop/releases", token, nil).list(t)
	if len(rels) != 4 {
		t.Fatalf("%d releases", len(rels))
	}
	slugOf := func(r map[string]any) string {
		if sl, ok := r["slug"].(map[string]any); ok {
			return sl["id"].(string)
		}
		return ""
	}
	if slugOf(rels[0]) != "" || slugOf(rels[1]) != "" || slugOf(rels[2]) == "" || slugOf(rels[3]) != slugOf(rels[2]) {
		t.Errorf("slugs of v1..v4: %q %q %q %q; want none, none, the deploy's, the deploy's", slugOf(rels[0]), slugOf(rels[1]), slugOf(rels[2]), slugOf(rels[3]))
	}
}

// Apps carry their generation. The one-off dyno limit is the app's, by the dyno's size (1 Eco,
// 5 Performance, 50 Standard) unless SetDynoLimit says, and a stop is a 202 without a body.
func TestGenerationsAndDynoLimits(t *testing.T) {
	s := New(Options{Token: token})
	s.SetStopGrace(100 * time.Millisecond)
	s.AddApp("cedar-app")
	s.AddApp("other")
	s.AddApp("fir-app")
	s.SetGeneration("fir-app", "fir")
	platform, _ := Serve(t, s)
	t.Cleanup(func() {
		for _, d := range s.Dynos() {
			if !d.Ended {
				s.KillDyno(d.Name)
			}
		}
	})
	if g := call(t, "GET", platform+"/apps/cedar-app", token, nil).obj(t)["generation"]; g != "cedar" {
		t.Errorf("a Cedar app's generation %v", g)
	}
	if g := call(t, "GET", platform+"/apps/fir-app", token, nil).obj(t)["generation"]; g != "fir" {
		t.Errorf("a Fir app's generation %v", g)
	}
	start := func(app, size string) answer {
		return call(t, "POST", platform+"/apps/"+app+"/dynos", token, map[string]any{"command": "sleep 30", "attach": false, "size": size})
	}
	for _, tc := range []struct {
		size  string
		limit int
	}{{"eco", 1}, {"performance-m", 5}} {
		app := "limits-" + strings.ToLower(tc.size)
		s.AddApp(app)
		for i := range tc.limit {
			if a := start(app, tc.size); a.status != 201 {
				t.Fatalf("%s dyno %d of %d: %d %s", tc.size, i+1, tc.limit, a.status, a.body)
			}
		}
		a := start(app, tc.size)
		want := fmt.Sprintf("Cannot run more than %d %s size dynos.", tc.limit, tc.size)
		if a.status != 422 || a.obj(t)["id"] != "cannot_run_above_limit" || !strings.HasPrefix(a.obj(t)["message"].(string), want) {
			t.Errorf("%s past its limit: %d %s", tc.size, a.status, a.body)
		}
	}
	// Another app's dynos do not count.
	if a := start("other", "eco"); a.status != 201 {
		t.Errorf("another app's Eco dyno: %d %s", a.status, a.body)
	}
	s.SetDynoLimit(1)
	if a := start("cedar-app", "standard-1X"); a.status != 201 {
		t.Fatalf("the first dyno under SetDynoLimit(1): %d %s", a.status, a.body)
	}
	if a := start("cedar-app", "standard-1X"); a.status != 422 {
		t.Errorf("the second under SetDynoLimit(1): %d %s", a.status, a.body)
	}
	id := ""
	for _, d := range s.Dynos() {
		if !d.Ended {
			id = d.ID
		}
	}
	a := call(t, "POST", platform+"/apps/cedar-app/dynos/"+id+"/actions/stop", token, nil)
	if a.status != 202 || len(a.body) != 0 {
		t.Errorf("stop: %d %q, want 202 without a body", a.status, a.body)
	}
}
