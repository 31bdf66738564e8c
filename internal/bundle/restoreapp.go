package bundle

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// RestoreDeps are what RestoreApp works with.
type RestoreDeps struct {
	Src      Reader
	Deployer Deployer
	// Out receives the plan before anything is done, and what is left to do after; scrubbed.
	Out      io.Writer
	Redactor *logging.Redactor // learns the bundle's config values
}

// RestoreOptions say which bundle goes into which app, and what it is held to.
type RestoreOptions struct {
	From   string // the bundle's release.json key
	To     string // the app: created when it does not exist, else it must be empty
	Checks Checks
	Allow  Allow
}

// RefusedError is a plan RestoreApp refused before anything was asked of Heroku.
type RefusedError struct{ Refusals []Refusal }

func (e *RefusedError) Error() string {
	var lines []string
	for _, r := range e.Refusals {
		lines = append(lines, "  "+r.String())
	}
	return "refused, nothing was changed on Heroku:\n" + strings.Join(lines, "\n")
}

// Overridable reports whether a flag accepts each refusal, as --confirm does the restore itself.
func (e *RefusedError) Overridable() bool {
	for _, r := range e.Refusals {
		if r.Flag == "" {
			return false
		}
	}
	return true
}

// DeployError is a failure once Heroku was asked to change things: the app may be half set up.
type DeployError struct{ Err error }

func (e *DeployError) Error() string { return e.Err.Error() }
func (e *DeployError) Unwrap() error { return e.Err }

// RestoreApp puts a bundle back into an app: the bundle is loaded and checked (ErrNoIdentity,
// ErrUnbound and the checks' errors come back as they are, nothing asked of Heroku), its plan
// printed, refused when it goes past what Allow accepts (*RefusedError), then deployed
// (*DeployError when that fails), and what is left to do printed.
func RestoreApp(ctx context.Context, d RestoreDeps, o RestoreOptions) error {
	b, err := Load(ctx, d.Src, o.From, o.Checks)
	if err != nil {
		return err
	}
	for _, v := range b.Values {
		if len(v) >= 4 {
			d.Redactor.Add(v)
		}
	}
	out := d.Redactor.Wrap(d.Out)
	plan := b.Plan(o.To)
	fmt.Fprint(out, plan)
	if b.Trust != Verified {
		d.Deployer.Log.Warn().Msg("the bundle's signature was not checked (no BUNDLE_VERIFY_KEY or --verify-key): read the plan above before trusting it")
	}
	if refusals := plan.Refusals(o.Allow); len(refusals) > 0 {
		return &RefusedError{Refusals: refusals}
	}
	if err := d.Deployer.Deploy(ctx, plan); err != nil {
		return &DeployError{Err: err}
	}
	fmt.Fprint(out, plan.LeftToDo())
	return nil
}
