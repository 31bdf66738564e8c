package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/config"
)

// help prints a command's help: what it does, its usage and flags, the variables it reads and an
// example. It reads no configuration.
func help(cmd *cobra.Command, _ []string) {
	w := cmd.OutOrStdout()
	text := cmd.Long
	if text == "" {
		text = cmd.Short
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n", strings.TrimSpace(text), cmd.UseLine())
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() || c.Name() == "help" {
				fmt.Fprintf(w, "  %-13s %s\n", c.Name(), c.Short)
			}
		}
	}
	if fl := cmd.LocalFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fl.FlagUsages())
	}
	if fl := cmd.InheritedFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(w, "\nGlobal flags:\n%s", fl.FlagUsages())
	}
	if vars := config.ReadBy(cmd.Name()); len(vars) > 0 {
		fmt.Fprintln(w, "\nEnvironment variables it reads (docs/configuration.md describes each):")
		for _, d := range vars {
			writeVar(w, d)
		}
	}
	if cmd.Example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", cmd.Example)
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nRun `%s help COMMAND` for a command's flags, variables and an example.\n", cmd.CommandPath())
	}
}

// writeVar is one variable's line: its name, whether it is required or its default, and the
// first sentence of its description.
func writeVar(w io.Writer, d config.VarDoc) {
	note := ""
	switch {
	case d.Required:
		note = " (required)"
	case d.Default != "":
		note = " (default " + d.Default + ")"
	}
	fmt.Fprintf(w, "  %s%s\n      %s\n", d.Name, note, firstSentence(d.Description))
}

// firstSentence is text up to its first full stop that ends a sentence (not that of "e.g.").
func firstSentence(text string) string {
	for i := 0; i < len(text); i++ {
		if text[i] != '.' || (i+1 < len(text) && text[i+1] != ' ') {
			continue
		}
		if before := text[:i]; !strings.HasSuffix(before, "e.g") && !strings.HasSuffix(before, "i.e") {
			return before
		}
	}
	return strings.TrimSuffix(text, ".")
}
