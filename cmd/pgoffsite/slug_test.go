package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The Go buildpack installs what go.mod's "+heroku install" names into the slug: only the job,
// never the simulator or other development tools.
func TestSlugInstallsOnlyPgoffsite(t *testing.T) {
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var installs []string
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "// +heroku install "); ok {
			installs = append(installs, strings.Fields(rest)...)
		}
	}
	if len(installs) != 1 || installs[0] != "./cmd/pgoffsite" {
		t.Errorf("go.mod installs %q into the slug, want only ./cmd/pgoffsite", installs)
	}
}

// The app has no web process (Procfile), so app.json must not send the user to one after deploy.
func TestAppJSONPointsAtNoWebProcess(t *testing.T) {
	procfile, err := os.ReadFile("../../Procfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(procfile), "\n") {
		if strings.HasPrefix(line, "web:") {
			t.Fatal("the Procfile has a web process; this test assumes there is none")
		}
	}
	raw, err := os.ReadFile("../../app.json")
	if err != nil {
		t.Fatal(err)
	}
	var app map[string]any
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	if v, ok := app["success_url"]; ok {
		t.Errorf("app.json has success_url %v, but there is no web process to show it", v)
	}
}
