// Command gendocs writes app.json's env and the configuration reference's table from the table of
// variables (config.Describe). Run it from the repository's root: go run ./internal/config/gendocs
package main

import (
	"fmt"
	"os"

	"github.com/pgoffsite/pgoffsite/internal/config"
)

func main() {
	for _, f := range []struct {
		path     string
		generate func([]byte) ([]byte, error)
	}{{"app.json", config.AppJSON}, {config.ConfigurationPage, config.Configuration}} {
		if err := rewrite(f.path, f.generate); err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: %v (run it from the repository's root)\n", err)
			os.Exit(1)
		}
	}
}

func rewrite(path string, generate func([]byte) ([]byte, error)) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := generate(old)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
