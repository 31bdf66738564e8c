// Package preflighttest is a Reporter for tests: it prints the findings the way `pgoffsite
// check` does, so a test compares the lines a user reads.
package preflighttest

import (
	"bytes"
	"fmt"
)

// Lines prints findings to W and counts the failures.
type Lines struct {
	W      *bytes.Buffer
	Failed int
}

func (c *Lines) OK(format string, a ...any)   { fmt.Fprintf(c.W, "ok    "+format+"\n", a...) }
func (c *Lines) Warn(format string, a ...any) { fmt.Fprintf(c.W, "warn  "+format+"\n", a...) }
func (c *Lines) Fix(format string, a ...any)  { fmt.Fprintf(c.W, "      fix: "+format+"\n", a...) }
func (c *Lines) Fail(format string, a ...any) {
	c.Failed++
	fmt.Fprintf(c.W, "FAIL  "+format+"\n", a...)
}
