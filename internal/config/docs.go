package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// RegenerateDocs is the command that writes app.json's env and the configuration reference's
// table from Describe, run from the repository's root.
const RegenerateDocs = "go run ./internal/config/gendocs"

// ConfigurationPage is the configuration reference, relative to the repository's root; its table
// is what lies between these lines.
const (
	ConfigurationPage = "docs/configuration.md"
	tableBegin        = "<!-- configuration table: written by `" + RegenerateDocs + "` from internal/config/vars.go; do not edit -->"
	tableEnd          = "<!-- end of the configuration table -->"
)

// AppJSON returns app.json with its env written from Describe: the Deploy form asks only for the
// required variables, what a first backup needs (every other has a default or is optional), in the
// table's order. The rest is kept byte for byte.
func AppJSON(app []byte) ([]byte, error) {
	start, end, err := envSpan(app)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("{")
	n := 0
	for _, d := range Describe() {
		if !d.Required {
			continue
		}
		entry := struct {
			Description string `json:"description"`
			Value       string `json:"value,omitempty"`
			Required    bool   `json:"required"`
		}{d.Description, d.Default, d.Required}
		var v bytes.Buffer
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false)
		enc.SetIndent("    ", "  ")
		if err := enc.Encode(entry); err != nil {
			return nil, err
		}
		if n > 0 {
			b.WriteString(",")
		}
		n++
		fmt.Fprintf(&b, "\n    %q: %s", d.Name, bytes.TrimSpace(v.Bytes()))
	}
	b.WriteString("\n  }")
	return slices.Concat(app[:start], b.Bytes(), app[end:]), nil
}

// envSpan is where the value of app.json's top-level "env" begins and ends.
func envSpan(app []byte) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(app))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, errors.New("app.json: not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0, 0, fmt.Errorf("app.json: %w", err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return 0, 0, fmt.Errorf("app.json: %w", err)
		}
		if key == "env" {
			end = int(dec.InputOffset())
			return end - len(value), end, nil
		}
	}
	return 0, 0, errors.New(`app.json: no "env"`)
}

// Configuration returns the configuration reference with its table written from Describe: every
// variable, the advanced ones in a table of their own after the others.
func Configuration(page []byte) ([]byte, error) {
	text := string(page)
	begin, end := strings.Index(text, tableBegin), strings.Index(text, tableEnd)
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("%s: the configuration table's markers are missing: put the lines\n%s\n%s\nwhere it goes", ConfigurationPage, tableBegin, tableEnd)
	}
	var b strings.Builder
	b.WriteString(tableBegin + "\n")
	for _, advanced := range []bool{false, true} {
		if advanced {
			b.WriteString("\nOverrides for tests, the demo or unusual setups:\n")
		}
		b.WriteString("\n| variable | required | default | read by | meaning |\n|---|---|---|---|---|\n")
		for _, d := range Describe() {
			if d.Advanced == advanced {
				b.WriteString(tableRow(d))
			}
		}
	}
	b.WriteString("\n")
	return []byte(text[:begin] + b.String() + text[end:]), nil
}

// tableRow is d's line of the configuration table.
func tableRow(d VarDoc) string {
	required, def := "no", ""
	if d.Required {
		required = "yes"
	}
	if d.Default != "" {
		def = "`" + d.Default + "`"
	}
	meaning := strings.TrimSpace(d.Description + " " + d.More)
	return fmt.Sprintf("| `%s` | %s | %s | %s | %s |\n", d.Name, required, def, readBy(d.Commands),
		strings.ReplaceAll(meaning, "|", `\|`))
}

// readBy names the commands for the table, the shorter way: those that read, or all but those
// that do not.
func readBy(commands []string) string {
	var not []string
	for _, c := range Commands() {
		if !slices.Contains(commands, c) {
			not = append(not, c)
		}
	}
	switch {
	case len(not) == 0:
		return "all"
	case len(not) < len(commands):
		return "all but " + strings.Join(not, ", ")
	}
	return strings.Join(commands, ", ")
}
