package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// pickS3Destination is the S3 destination a bucket command works on: the one --destination
// names (N, 1-based in ARCHIVE_URL's order, or its s3://bucket/prefix), or the only S3 one.
// With several and no choice it refuses, listing them, rather than guess which bucket to change.
func pickS3Destination(cfg config.Config, choice string) (spec.Archive, error) {
	return pickDestination(cfg, choice, "s3")
}

// pickReadDestination is the destination verify and restore read from: the one --destination
// names, else the first ARCHIVE_URL names (reading changes nothing, so no choice is forced).
func pickReadDestination(cfg config.Config, choice string) (spec.Archive, error) {
	if strings.TrimSpace(choice) == "" && len(cfg.Archives) > 0 {
		return cfg.Archives[0], nil
	}
	return pickDestination(cfg, choice, "")
}

// loadForReading loads the configuration of a command that reads archives (verify, restore),
// with Archive the destination --destination picks.
func loadForReading(choice, command string, opts ...config.Option) (config.Config, error) {
	cfg, err := config.LoadFor(command, opts...)
	if err != nil {
		return cfg, err
	}
	a, err := pickReadDestination(cfg, choice)
	if err != nil {
		return cfg, fmt.Errorf("  --destination: %w", err)
	}
	cfg.Archive = a
	return cfg, nil
}

// pickDestination picks by --destination among ARCHIVE_URL's destinations of scheme ("" any).
func pickDestination(cfg config.Config, choice, scheme string) (spec.Archive, error) {
	kinds, ones := "destinations", "destinations"
	if scheme == "s3" {
		kinds, ones = "S3 destinations", "S3 ones"
	}
	var eligible []int
	for i, a := range cfg.Archives {
		if scheme == "" || a.Scheme == scheme {
			eligible = append(eligible, i)
		}
	}
	list := func() string {
		var b strings.Builder
		for _, i := range eligible {
			fmt.Fprintf(&b, "\n  --destination %d   (or --destination %s)", i+1, cfg.Archives[i])
		}
		return b.String()
	}
	choice = strings.TrimSpace(choice)
	switch {
	case len(eligible) == 0:
		return spec.Archive{}, fmt.Errorf("ARCHIVE_URL names no s3:// destination: this command works on S3 buckets")
	case choice == "" && len(eligible) == 1:
		return cfg.Archives[eligible[0]], nil
	case choice == "":
		return spec.Archive{}, fmt.Errorf("ARCHIVE_URL names %d %s: say which with one of%s", len(eligible), kinds, list())
	}
	if n, err := strconv.Atoi(choice); err == nil {
		if n < 1 || n > len(cfg.Archives) {
			return spec.Archive{}, fmt.Errorf("--destination %d: ARCHIVE_URL names %d destination(s); the %s are%s", n, len(cfg.Archives), ones, list())
		}
		if a := cfg.Archives[n-1]; scheme != "" && a.Scheme != scheme {
			return spec.Archive{}, fmt.Errorf("--destination %d is %s, not an S3 bucket; the %s are%s", n, a, ones, list())
		}
		return cfg.Archives[n-1], nil
	}
	want := strings.TrimRight(choice, "/")
	var found []int
	for _, i := range eligible {
		if cfg.Archives[i].String() == want {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return spec.Archive{}, fmt.Errorf("--destination %s is not one of ARCHIVE_URL's %s:%s", choice, kinds, list())
	case 1:
		return cfg.Archives[found[0]], nil
	}
	// The same bucket and prefix at two endpoints: two providers, told apart by number only.
	return spec.Archive{}, fmt.Errorf("--destination %s names %d destinations (the same bucket at different endpoints): give its number instead:%s", choice, len(found), list())
}
