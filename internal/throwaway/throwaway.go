// Package throwaway is the life of a Heroku Postgres add-on pgoffsite provisions on its own app
// for one job and deletes after it (a drill's database, a fork to dump): named so that a later
// run knows a killed run's left-overs, waited for within a bound, its URL taught to the
// redactor, and deleted on a context that outlives a SIGTERM for a bounded grace.
package throwaway

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// API is what a throwaway add-on needs of the Platform API (heroku.Client), besides creating it.
type API interface {
	Addon(ctx context.Context, app, id string) (heroku.Addon, error)
	Addons(ctx context.Context, app string) ([]heroku.Addon, error)
	DeleteAddon(ctx context.Context, app, id string) error
	AddonURL(ctx context.Context, app string, a heroku.Addon) (heroku.Secret, error)
}

// Kind says whose add-ons these are: their names' prefix, and the words and variable the log
// uses for them.
type Kind struct {
	Prefix     string // begins every name: what tells a left-over from the app's other add-ons
	Noun       string // "drill database", "fork"
	Job        string // "drill", "backup": what made one
	TimeoutVar string // the variable bounding one job: older add-ons are left-overs
}

// Name names a new add-on: the prefix, the UTC time, and a few random characters, since add-on
// names are unique across all of Heroku.
func (k Kind) Name(now time.Time) string {
	return k.Prefix + now.UTC().Format("20060102-150405") + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:4]
}

// Leftovers are the add-ons on app named like k's and older than olderThan: a job takes less, so
// no running one can be using them. Younger ones are logged and left alone.
func (k Kind) Leftovers(list []heroku.Addon, olderThan time.Duration, log zerolog.Logger) []heroku.Addon {
	var out []heroku.Addon
	for _, a := range list {
		if !strings.HasPrefix(a.Name, k.Prefix) {
			continue
		}
		age := time.Since(a.CreatedAt)
		if a.CreatedAt.IsZero() || age <= olderThan {
			log.Info().Str("addon", a.Name).Str("age", age.Round(time.Second).String()).
				Msgf("a %s younger than %s is on the app: left alone (another %s may be using it)", k.Noun, k.TimeoutVar, k.Job)
			continue
		}
		out = append(out, a)
	}
	return out
}

// RemoveLeftovers deletes k's left-overs on app (Leftovers), logging each; it cannot fail the
// job that calls it.
func (k Kind) RemoveLeftovers(ctx context.Context, api API, log zerolog.Logger, app string, olderThan time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	list, err := api.Addons(ctx, app)
	if err != nil {
		log.Warn().Err(err).Str("pgoffsite_app", app).Msgf("cannot list the app's add-ons to remove %ss earlier %ss left behind (the %s goes on)", k.Noun, k.Job, k.Job)
		return
	}
	for _, a := range k.Leftovers(list, olderThan, log) {
		if err := api.DeleteAddon(ctx, app, a.ID); err != nil {
			log.Error().Err(err).Str("addon", a.Name).Str("remove_with", RemoveCommand(a.Name, app)).
				Msgf("cannot remove a %s an earlier %s left behind (it is billed until removed)", k.Noun, k.Job)
			continue
		}
		log.Warn().Str("addon", a.Name).Str("plan", a.Plan).Time("created_at", a.CreatedAt).Str("age", time.Since(a.CreatedAt).Round(time.Second).String()).
			Msgf("removed a %s that an earlier, interrupted %s left behind", k.Noun, k.Job)
	}
}

// RemoveCommand is how a person removes an add-on pgoffsite could not.
func RemoveCommand(addon, app string) string {
	return fmt.Sprintf("heroku addons:destroy %s -a %s --confirm %s", addon, app, app)
}

// Timing spaces the waits for Heroku; zero fields take the defaults (tests shorten them).
type Timing struct {
	// Provision bounds the wait for Heroku to provision the add-on (minutes on Essential plans,
	// up to a quarter of an hour on bigger ones, longer for a big fork); default 30 minutes.
	Provision time.Duration
	// PollBase and PollMax space the polls of the add-on's state; default 3 s growing to 30 s.
	PollBase, PollMax time.Duration
	// Pace stretches each wait when the account's API budget runs low (heroku.Client.Pace);
	// nil waits as spaced.
	Pace func(time.Duration) time.Duration
}

func (t Timing) provision() time.Duration { return orDefault(t.Provision, 30*time.Minute) }
func (t Timing) pollBase() time.Duration  { return orDefault(t.PollBase, 3*time.Second) }
func (t Timing) pollMax() time.Duration   { return orDefault(t.PollMax, 30*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Wait polls the add-on until Heroku has provisioned it, with growing waits (the client backs
// off further on a low RateLimit-Remaining with Pace), for at most t.Provision.
func (k Kind) Wait(ctx context.Context, api API, app string, ad heroku.Addon, t Timing) (heroku.Addon, error) {
	limit := t.provision()
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for attempt := 0; ; attempt++ {
		switch {
		case ad.State == heroku.AddonProvisioned && hasURLVar(ad):
			return ad, nil
		case ad.State == heroku.AddonDeprovisioned:
			return ad, fmt.Errorf("Heroku deprovisioned the %s %s before it was ready", k.Noun, ad.Name)
		}
		delay := backoff.Delay(t.pollBase(), t.pollMax(), attempt)
		if t.Pace != nil {
			delay = t.Pace(delay)
		}
		if err := backoff.Sleep(wctx, delay); err != nil {
			if ctx.Err() == nil {
				return ad, fmt.Errorf("the %s %s is still %q after %s: Heroku did not finish provisioning it (see https://status.heroku.com)", k.Noun, ad.Name, ad.State, limit)
			}
			return ad, fmt.Errorf("waiting for the %s %s to be provisioned: %w", k.Noun, ad.Name, err)
		}
		next, err := api.Addon(wctx, app, ad.Name)
		if err != nil {
			return ad, err
		}
		ad = next
	}
}

func hasURLVar(ad heroku.Addon) bool {
	for _, v := range ad.ConfigVars {
		if strings.HasSuffix(v, "_URL") {
			return true
		}
	}
	return false
}

// URL reads a provisioned add-on's database URL and teaches it, and its password, to red: from
// here on errors and the log are scrubbed of them.
func URL(ctx context.Context, api API, app string, ad heroku.Addon, red *logging.Redactor) (string, error) {
	secret, err := api.AddonURL(ctx, app, ad)
	if err != nil {
		return "", err
	}
	dbURL := secret.Reveal()
	red.Add(dbURL)
	if u, err := url.Parse(dbURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			red.Add(pw)
		}
	}
	return dbURL, nil
}

// DeleteGrace bounds the DELETE after a job. It runs after a SIGTERM too, within the 30 s
// before Heroku's SIGKILL, and before the notification's own bound.
const DeleteGrace = 15 * time.Second

// Delete deletes the add-on by name (its id may never have come back) on a context of its own,
// bounded by DeleteGrace: ctx's cancellation (a SIGTERM) does not skip it.
func Delete(ctx context.Context, api API, app, name string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DeleteGrace)
	defer cancel()
	return api.DeleteAddon(dctx, app, name)
}
