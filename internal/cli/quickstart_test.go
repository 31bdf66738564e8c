package cli

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The README's quick start, followed as a newcomer follows it: every pgoffsite command of its code
// blocks, in the README's order and with the README's flags, against the Heroku simulator, MinIO
// and PostgreSQL, with the targets and the archive prefix it configures. A command the program no
// longer takes, a step that no longer works, or a step dropped from the README fails here.
func TestQuickStart(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := quickStart(t, string(raw))
	commands := pgoffsiteCommands(section)
	var names []string
	for _, c := range commands {
		names = append(names, c[0])
	}
	// The steps a first backup needs, in the order they happen.
	want := []string{"setup-bucket", "policy", "check", "backup", "status"}
	if !inOrder(names, want) {
		t.Fatalf("the quick start's pgoffsite commands are %v; want %v among them, in that order", names, want)
	}

	targets := configured(t, section, "BACKUP_TARGETS")
	archiveURL := configured(t, section, "ARCHIVE_URL")
	w := newWorld(t)
	type target struct{ app, database string }
	var archived []target
	for _, tg := range strings.Fields(targets) {
		app, database, _ := strings.Cut(tg, ":")
		if database == "" {
			database = "DATABASE"
		}
		w.sim.AddApp(app)
		w.database(app, database, 200)
		archived = append(archived, target{app, database})
	}
	env := w.env(targets)
	// The README's bucket is the test's; its prefix is the README's own.
	_, prefix, _ := strings.Cut(strings.TrimPrefix(archiveURL, "s3://"), "/")
	if prefix != "pgbackups" {
		t.Fatalf("ARCHIVE_URL %q: the archives' prefix is %q; this test reads them under pgbackups/", archiveURL, prefix)
	}
	env["ARCHIVE_URL"] = "s3://" + w.bucket + "/" + prefix
	// The README's bucket is on AWS; MinIO, standing in for it, has no Glacier storage class.
	env["BUCKET_TRANSITION_DAYS"] = "-1"

	start := time.Now()
	for _, args := range commands {
		code, out := w.run(env, args...)
		if code != ExitOK {
			t.Fatalf("pgoffsite %s, as the README's quick start runs it: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	t.Logf("the quick start's %d pgoffsite commands took %s", len(commands), time.Since(start).Round(time.Millisecond))
	for _, tg := range archived {
		m, dump := w.manifest(tg.app, tg.database)
		w.checkArchive(tg.app, m, dump)
	}
}

// quickStart is the README's "Quick start" section.
func quickStart(t *testing.T, readme string) string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no section \"## Quick start\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// codeLines are the lines of the section's shell code blocks, a line continued with `\` joined to
// the next and comments dropped.
func codeLines(section string) []string {
	var lines []string
	in, continued := false, false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			in = !in
			continue
		case !in:
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		joined := continued && len(lines) > 0
		continued = strings.HasSuffix(line, `\`)
		line = strings.TrimSuffix(line, `\`)
		if joined {
			lines[len(lines)-1] += " " + line
		} else {
			lines = append(lines, line)
		}
	}
	return lines
}

// pgoffsiteCommand is `pgoffsite` as a word, then its arguments up to a redirection, a pipe, a
// quote or the end of the command.
var pgoffsiteCommand = regexp.MustCompile(`(?:^|\s)pgoffsite((?:\s+[^\s>|;&"'#]+)+)`)

// pgoffsiteCommands are the arguments of every pgoffsite command in the section's code blocks, in
// order, whether run on your machine or through `heroku run`.
func pgoffsiteCommands(section string) [][]string {
	var commands [][]string
	for _, line := range codeLines(section) {
		for _, m := range pgoffsiteCommand.FindAllStringSubmatch(line, -1) {
			commands = append(commands, strings.Fields(m[1]))
		}
	}
	return commands
}

// configured is the value the section's code gives name (NAME=value or NAME="value").
func configured(t *testing.T, section, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?:^|\s)` + name + `=("[^"]*"|\S+)`).FindStringSubmatch(strings.Join(codeLines(section), "\n"))
	if m == nil {
		t.Fatalf("the quick start sets no %s", name)
	}
	return strings.Trim(m[1], `"`)
}

// inOrder says whether want appears in got, in order, not necessarily next to each other.
func inOrder(got, want []string) bool {
	for _, w := range want {
		i := slices.Index(got, w)
		if i < 0 {
			return false
		}
		got = got[i+1:]
	}
	return true
}
