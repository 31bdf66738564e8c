// Package envlist is the one rule for a variable that lists several values (ARCHIVE_URL,
// BACKUP_TARGETS, RETENTION, ARCHIVE_RECIPIENTS): a leaf package, so that the packages that parse
// one such value (retention) split it as config does.
package envlist

import (
	"strings"
	"unicode"
)

// Split splits a list: spaces, tabs, line breaks and commas all separate items, alike, and
// empty items are dropped. No value of those lists has a space or a comma of its own, so
// splitting at both never cuts one value in two, and never leaves two values glued together
// (s3://a/x,s3://b/y is two destinations).
func Split(raw string) []string {
	return strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
