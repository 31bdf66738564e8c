package cli

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHerokuRunShownAsItWorks: every `heroku run` line the help shows passes -x, without which a
// script sees the CLI's status, not pgoffsite's; and where it sets variables, they are separated
// by ";" (heroku run -e "A=1;B=2"), as the Heroku CLI splits them: a space would make one value.
func TestHerokuRunShownAsItWorks(t *testing.T) {
	spaced := regexp.MustCompile(`(-e|--env)[ =]"?[A-Z_]+=[^ ;"]* [A-Z_]+=`)
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		for _, text := range []string{c.Long, c.Example} {
			for _, line := range strings.Split(text, "\n") {
				i := strings.Index(line, "heroku run")
				if i < 0 {
					continue
				}
				seen++
				if !strings.HasPrefix(line[i:], "heroku run -x") {
					t.Errorf("%s: %q shows heroku run without -x", c.CommandPath(), strings.TrimSpace(line))
				}
				if spaced.MatchString(line) {
					t.Errorf("%s: %q separates heroku run's variables by a space", c.CommandPath(), strings.TrimSpace(line))
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(NewFactory(io.Discard, io.Discard)))
	if seen < 4 {
		t.Errorf("%d heroku run lines in the help, want at least check, backup, bundle and drill's", seen)
	}
}
