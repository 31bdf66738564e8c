package bundle

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

func TestRegistryBuildpack(t *testing.T) {
	for b, want := range map[string]bool{
		"heroku/ruby": true, "urn:buildpack:heroku/ruby": true, "heroku-community/apt": true, "heroku/nodejs": true, "mars/create-react-app": true,
		"https://github.com/heroku/heroku-buildpack-ruby": false, "git://example.com/bp.git": false, "http://x/y": false,
		"https://buildpack-registry.s3.amazonaws.com/buildpacks/heroku/ruby.tgz": false, "heroku/ruby#v1": false, "../ruby": false, "": false,
	} {
		if got := RegistryBuildpack(b); got != want {
			t.Errorf("RegistryBuildpack(%q) = %v, want %v", b, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	plan := func(buildpacks []string, f ...heroku.Process) Plan {
		r := record()
		r.Buildpacks, r.Formation = buildpacks, f
		return (&Loaded{Record: r}).Plan("shop-again")
	}
	flags := func(rs []Refusal) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Flag)
		}
		return strings.Join(out, ",")
	}
	small := []heroku.Process{{Type: "web", Quantity: 2, Size: "Standard-1X"}, {Type: "worker", Quantity: 8, Size: "standard-2X"}}
	if rs := plan([]string{"heroku/go", "urn:buildpack:heroku-community/apt"}, small...).Refusals(Allow{}); len(rs) != 0 {
		t.Errorf("registry buildpacks and 10 standard dynos: %v", rs)
	}
	cases := []struct {
		name  string
		p     Plan
		allow Allow
		want  string
	}{
		{"buildpack URL", plan([]string{"https://github.com/x/bp"}, small...), Allow{}, "--allow-buildpack-url"},
		{"buildpack URL allowed", plan([]string{"https://github.com/x/bp"}, small...), Allow{BuildpackURL: true}, ""},
		{"eleven dynos", plan(nil, heroku.Process{Type: "web", Quantity: 11, Size: "basic"}), Allow{}, "--allow-formation"},
		{"one performance dyno", plan(nil, heroku.Process{Type: "web", Quantity: 1, Size: "performance-m"}), Allow{}, "--allow-formation"},
		{"the planted formation", plan([]string{"https://x/bp"}, heroku.Process{Type: "worker", Quantity: 50, Size: "performance-l"}), Allow{}, "--allow-buildpack-url,--allow-formation"},
		{"both allowed", plan([]string{"https://x/bp"}, heroku.Process{Type: "worker", Quantity: 50, Size: "performance-l"}), Allow{BuildpackURL: true, Formation: true}, ""},
		{"unknown process type", plan(nil, heroku.Process{Type: "clock", Quantity: 1, Size: "basic"}), Allow{Formation: true}, ""},
	}
	for _, c := range cases {
		rs := c.p.Refusals(c.allow)
		got := flags(rs)
		if c.name == "unknown process type" {
			if len(rs) != 1 || rs[0].Flag != "" || !strings.Contains(rs[0].Rule, "scales clock, which the slug's process types lack") {
				t.Errorf("%s: %v", c.name, rs)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: flags %q, want %q (%v)", c.name, got, c.want, rs)
		}
	}
}
