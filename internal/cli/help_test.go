package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/config"
)

// commandNames are the commands of the tree, as the root lists them (completion and help too).
func commandNames() []string {
	var names []string
	root := newRoot(NewFactory(io.Discard, io.Discard))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	return names
}

// Every command's help, asked for in each of the three ways, runs in an empty environment: it
// reads no configuration and needs no credentials. It exits 0 and prints the usage, the flags,
// the variables the command reads and an example.
func TestHelpEveryCommandInAnEmptyEnvironment(t *testing.T) {
	bin := pgoffsiteBinary(t)
	names := commandNames()
	if len(names) < 12 {
		t.Fatalf("the tree has %d commands: %v", len(names), names)
	}
	for _, name := range names {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			cmd := exec.Command("env", append([]string{"-i", bin}, args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			out := stdout.String()
			if err != nil || !strings.Contains(out, "Usage:\n  pgoffsite "+name) {
				t.Errorf("env -i pgoffsite %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
				continue
			}
			if vars := config.ReadBy(name); len(vars) > 0 && !strings.Contains(out, "Environment variables it reads") {
				t.Errorf("pgoffsite %s: the help does not list the variables", strings.Join(args, " "))
			}
		}
	}
}

// Each pgoffsite command's help names the variables it reads and gives an example.
func TestHelpNamesVariablesAndExample(t *testing.T) {
	cases := map[string][]string{
		"backup":       {"--target APP:DATABASE", "HEROKU_API_KEY (required)", "BACKUP_TARGETS", "ARCHIVE_RECIPIENTS", "Example:"},
		"setup-bucket": {"--dry-run", "BUCKET_TRANSITION_DAYS (default 30)", "AWS_REGION", "Example:"},
		"policy":       {"--reader", "ARCHIVE_URL (required)", "Example:"},
		"drill":        {"--keep", "DRILL_PLAN (default heroku-postgresql:essential-0)", "AGE_IDENTITY", "Example:"},
		"status":       {"--json", "STATUS_MAX_SHRINK", "Example:"},
		"verify":       {"--restore-to", "AGE_IDENTITY", "Example:"},
	}
	for name, want := range cases {
		var stdout, stderr bytes.Buffer
		if code := testRun(context.Background(), []string{"help", name}, &stdout, &stderr); code != ExitOK {
			t.Errorf("help %s: exit %d\n%s", name, code, stderr.String())
		}
		for _, s := range want {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("help %s does not say %q:\n%s", name, s, stdout.String())
			}
		}
		for _, s := range []string{"DRILL_PLAN", "BUCKET_EXPIRE_DAYS"} {
			if name != "drill" && name != "setup-bucket" && strings.Contains(stdout.String(), s) {
				t.Errorf("help %s lists %s, which it does not read", name, s)
			}
		}
	}
	// A variable missing from the table would be in no command's help: every one is some command's.
	for _, d := range config.Describe() {
		if len(d.Commands) == 0 {
			t.Errorf("%s is read by no command", d.Name)
		}
	}
}

// Shell completion comes with the command tree.
func TestHelpCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "bash completion", "zsh": "#compdef pgoffsite", "fish": "complete -c pgoffsite"} {
		var stdout, stderr bytes.Buffer
		code := testRun(context.Background(), []string{"completion", shell}, &stdout, &stderr)
		if code != ExitOK || !strings.Contains(stdout.String(), want) {
			t.Errorf("completion %s: exit %d, script lacks %q\n%s", shell, code, want, stderr.String())
		}
	}
}

// A command line pgoffsite cannot run exits 2 and says what to do; nothing is read.
func TestHelpUsageMistakes(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"Usage:\n  pgoffsite COMMAND", "backup"}},
		{[]string{"bakup"}, []string{`unknown command "bakup"`, "did you mean backup?", "pgoffsite help"}},
		{[]string{"backup", "--bogus"}, []string{"unknown flag: --bogus", "Usage: pgoffsite backup", "pgoffsite backup --help"}},
		{[]string{"backup", "--target"}, []string{"--target APP:DATABASE", "pgoffsite backup --help"}},
		{[]string{"backup", "--target", " "}, []string{"--target needs a target, APP:DATABASE"}},
		{[]string{"status", "extra"}, []string{"pgoffsite status takes no arguments", "BACKUP_TARGETS"}},
		{[]string{"setup-bucket", "--transition-days", "soon"}, []string{"invalid argument", "pgoffsite setup-bucket --help"}},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := testRun(context.Background(), c.args, &stdout, &stderr)
		if code != ExitUsage {
			t.Errorf("pgoffsite %q: exit %d, want %d", c.args, code, ExitUsage)
		}
		for _, s := range c.want {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("pgoffsite %q does not say %q:\n%s", c.args, s, stderr.String())
			}
		}
		if strings.Contains(stderr.String(), "configuration has problems") {
			t.Errorf("pgoffsite %q read the configuration", c.args)
		}
	}
	var stdout bytes.Buffer
	if code := testRun(context.Background(), []string{"--version"}, &stdout, io.Discard); code != ExitOK || stdout.String() != versionString()+"\n" {
		t.Errorf("--version: exit %d, %q", code, stdout.String())
	}
}

// Errors become exit statuses in one place: each type its status, and what it says.
func TestHelpExitStatuses(t *testing.T) {
	cases := []struct {
		err  error
		code int
		says string
	}{
		{nil, ExitOK, ""},
		{exitWith(ExitOK), ExitOK, ""},
		{exitWith(ExitFailed), ExitFailed, ""},
		{fmt.Errorf("wrapped: %w", exitWith(ExitUsage)), ExitUsage, ""},
		{badUsage("pgoffsite restore: add --confirm shop"), ExitUsage, "pgoffsite restore: add --confirm shop\n"},
		{badConfig(errors.New("  ARCHIVE_URL: not set")), ExitUsage, "pgoffsite: the configuration has problems; nothing was done:\n  ARCHIVE_URL: not set\n"},
		{errors.New("setup-bucket s3://b: denied"), ExitFailed, "pgoffsite: setup-bucket s3://b: denied\n"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if code := exitStatus(&out, c.err); code != c.code || out.String() != c.says {
			t.Errorf("%v: exit %d saying %q, want %d saying %q", c.err, code, out.String(), c.code, c.says)
		}
	}
}
