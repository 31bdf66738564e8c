// Package spectest records what a kind's parser reports, for the kinds' tests.
package spectest

import (
	"strconv"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

// Problem is one reported problem.
type Problem struct{ Var, Msg, Fix string }

// Recorder is a spec.Reporter keeping every problem; its value checks accept anything.
type Recorder struct{ Problems []Problem }

func (r *Recorder) Add(name, msg, fix string) {
	r.Problems = append(r.Problems, Problem{name, msg, fix})
}
func (r *Recorder) Quote(s string) string                { return strconv.Quote(s) }
func (r *Recorder) URL(_, _, raw, _ string) string       { return raw }
func (r *Recorder) StorageClass(_, _, raw string) string { return raw }
func (r *Recorder) SSE(_, _, raw string) string          { return raw }

// Field is destination pos of n in ARCHIVE_URL, written raw, reporting to r.
func (r *Recorder) Field(raw string, pos, n int) spec.Field {
	return spec.Field{R: r, Raw: raw, Pos: pos, N: n}
}
