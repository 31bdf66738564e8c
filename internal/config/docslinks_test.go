package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every relative link of the README and the pages of docs/ (the configuration table's included)
// leads to a file that exists and, with #anchor, to a heading of that file: text moved from one
// page to another cannot leave a link behind that leads nowhere.
func TestDocsLinksResolve(t *testing.T) {
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeBlock := regexp.MustCompile("(?s)```.*?```")
	links := 0
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(codeBlock.ReplaceAllString(string(raw), ""), -1) {
			if strings.Contains(m[1], "://") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(m[1], "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
			}
			text, err := os.ReadFile(target)
			switch {
			case err != nil:
				t.Errorf("%s links to %s, which cannot be read: %v", page, m[1], err)
			case anchor != "" && !headingAnchors(string(text))[anchor]:
				t.Errorf("%s links to %s, but %s has no heading with that anchor", page, m[1], target)
			}
		}
	}
	if links < 20 {
		t.Errorf("found %d relative links in the README and docs/; the pages link to each other far more", links)
	}
}

// headingAnchors are the anchors GitHub gives a markdown page's headings: lower case, punctuation
// but - and _ dropped, spaces made -.
func headingAnchors(page string) map[string]bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(page, -1) {
		a := drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), "")
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	return anchors
}
