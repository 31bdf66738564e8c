package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every line of the threat model (docs/bucket.md) names the tests that prove it, and those tests exist:
// a renamed or deleted test cannot leave a promise behind unproven.
func TestThreatModelNamesTestsThatExist(t *testing.T) {
	raw, err := os.ReadFile("../../docs/bucket.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## What a leaked key can do\n")
	if !ok {
		t.Fatal("docs/bucket.md has no section \"What a leaked key can do\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		for _, m := range funcRE.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Leaked") {
			continue
		}
		rows++
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		proof := cells[len(cells)-1]
		if strings.Contains(proof, "residual") {
			continue // what remains possible, said as such
		}
		names := regexp.MustCompile("`(Test\\w+)(/\\w+)?`").FindAllStringSubmatch(proof, -1)
		if len(names) == 0 {
			t.Errorf("threat-model line names no test: %s", line)
		}
		for _, n := range names {
			if !defined[n[1]] {
				t.Errorf("threat-model line names %s, which no test file defines: %s", n[1], line)
			}
		}
	}
	if rows < 8 {
		t.Errorf("the threat model has %d lines; want the uploader's, reader's, Heroku and age keys covered", rows)
	}
}
