package bundle

import (
	"strings"
	"testing"
)

// A refusal that every flag accepts is the user's to override (exit 2 in the command); one that
// no flag accepts is not; the message lists each with its flag.
func TestRefusedError(t *testing.T) {
	flagged := Refusal{Rule: "buildpack https://x.example/bp.tgz is given by URL", Flag: "--allow-buildpack-url"}
	hard := Refusal{Rule: "the slug is larger than Heroku accepts"}
	e := &RefusedError{Refusals: []Refusal{flagged}}
	if !e.Overridable() {
		t.Error("a flagged refusal is not overridable")
	}
	e.Refusals = append(e.Refusals, hard)
	if e.Overridable() {
		t.Error("a refusal no flag accepts is overridable")
	}
	want := "refused, nothing was changed on Heroku:\n  buildpack https://x.example/bp.tgz is given by URL; to deploy it anyway, add --allow-buildpack-url\n  the slug is larger than Heroku accepts"
	if got := e.Error(); got != want {
		t.Errorf("%q\nwant %q", got, want)
	}
	if !strings.Contains((&DeployError{Err: e}).Error(), "refused") {
		t.Error("DeployError hides its cause")
	}
}
