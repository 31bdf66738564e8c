package config

import (
	"strconv"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Problem is one configuration mistake: the variable, what is wrong, and what to do about it.
type Problem struct {
	Var     string
	Message string
	Fix     string
	// decrypts: the environment could decrypt archives. A problem where backups run (Load), not
	// where archives are read back with an identity (see Problem.stops).
	decrypts bool
}

func (p Problem) String() string {
	s := p.Var + ": " + p.Message
	if p.Fix != "" {
		s += " — " + p.Fix
	}
	return s
}

// Problems is every configuration mistake found; it is the error the Load functions return.
type Problems []Problem

// Error has one line per problem, indented so that it reads well under a heading.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}

// checker collects problems. Every value it quotes passes through q, which removes the secrets:
// a user who pastes the API key into the wrong variable must not see it in the logs.
type checker struct {
	ps      Problems
	secrets []string
}

// add scrubs msg whole, and fix of the environment's secrets only: a fix is pgoffsite's own text
// (with any value in it quoted through q), whose example URLs, such as
// postgres://user:password@host, must reach the user as written.
func (c *checker) add(v, msg, fix string) {
	c.ps = append(c.ps, Problem{Var: v, Message: c.scrub(msg), Fix: scrub.Values(fix, c.secrets...)})
}

// addDecrypts adds a problem of a private key that opens the archives, where backups run.
func (c *checker) addDecrypts(v, msg, fix string) {
	c.add(v, msg, fix)
	c.ps[len(c.ps)-1].decrypts = true
}

// q quotes a value for a message: secrets removed first, then clipped so that a pasted blob
// does not flood the message.
func (c *checker) q(s string) string {
	s = c.scrub(s)
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max-3]) + "..."
	}
	return strconv.Quote(s)
}

func (c *checker) scrub(s string) string {
	return scrub.String(s, c.secrets...)
}
