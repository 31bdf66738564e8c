package bundle

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
)

// Deployer puts a loaded bundle into an app: region and stack, buildpacks, config vars, slug,
// release, formation.
type Deployer struct {
	Heroku *heroku.Client
	Src    Reader
	// HTTP PUTs the slug to the blob URL Heroku gives (no overall timeout: Deploy bounds the PUT).
	HTTP *http.Client
	Log  zerolog.Logger
}

// Deploy carries out p. It never replaces a running app's code: an existing app must be empty.
func (d Deployer) Deploy(ctx context.Context, p Plan) error {
	rec, app := p.Bundle.Record, p.App
	info, err := d.prepare(ctx, app, rec)
	if err != nil {
		return err
	}
	if info.Region != rec.Region || info.Stack != rec.Stack {
		d.Log.Warn().Str("region", info.Region).Str("stack", info.Stack).Str("bundle_region", rec.Region).Str("bundle_stack", rec.Stack).
			Msg("the existing app runs in another region or on another stack than the bundle's app (a slug only runs on its stack)")
	}
	d.Log.Info().Str("region", info.Region).Str("stack", info.Stack).Msg("app ready")
	if len(rec.Buildpacks) > 0 {
		if err := d.Heroku.SetBuildpacks(ctx, app, p.Buildpacks()); err != nil {
			return err
		}
	}
	if len(p.Set) > 0 {
		set := make(map[string]heroku.Secret, len(p.Set))
		for _, name := range p.Set {
			set[name] = heroku.Secret(p.Bundle.Values[name])
		}
		if err := d.Heroku.SetConfigVars(ctx, app, set); err != nil {
			return err
		}
	}
	d.Log.Info().Int("config_vars", len(p.Set)).Int("addon_vars_skipped", len(p.AddonVars)).Msg("config vars set")
	if rec.Slug == nil {
		return nil
	}
	version, err := d.uploadSlug(ctx, app, rec)
	if err != nil {
		return err
	}
	d.Log.Info().Int64("bytes", rec.Slug.Bytes).Int("release", version).Msg("slug uploaded and released")
	if len(rec.Formation) > 0 {
		if err := d.Heroku.Scale(ctx, app, rec.Formation); err != nil {
			return err
		}
		d.Log.Info().Int("process_types", len(rec.Formation)).Msg("formation scaled")
	}
	return nil
}

// prepare creates the app in the bundle's region and stack, or accepts an existing one that is
// empty: no release with code in all its history (every page of it), no formation, and no config
// var but those its add-ons set. A restore never replaces or mixes into a running app.
func (d Deployer) prepare(ctx context.Context, app string, rec Record) (heroku.AppInfo, error) {
	info, err := d.Heroku.AppInfo(ctx, app)
	if heroku.IsNotFound(err) {
		if err := d.Heroku.CreateApp(ctx, app, rec.Region, rec.Stack); err != nil {
			return info, err
		}
		return d.Heroku.AppInfo(ctx, app)
	}
	if err != nil {
		return info, err
	}
	notEmpty := func(why string) error {
		return fmt.Errorf("the app %s exists and %s: restore-app sets up only a new app or an empty one (name a new app with --to: restore-app creates it)", app, why)
	}
	var code *heroku.Release
	err = d.Heroku.EveryRelease(ctx, app, func(r heroku.Release) bool {
		if r.SlugID != "" {
			code = &r
		}
		return code == nil
	})
	switch {
	case err != nil:
		return info, err
	case code != nil:
		return info, notEmpty(fmt.Sprintf("has released code (v%d)", code.Version))
	}
	formation, err := d.Heroku.Formation(ctx, app)
	if err != nil {
		return info, err
	}
	if len(formation) > 0 {
		types := make([]string, len(formation))
		for i, f := range formation {
			types[i] = f.Type
		}
		return info, notEmpty("has a formation (" + strings.Join(types, ", ") + ")")
	}
	vars, err := d.Heroku.ConfigVars(ctx, app)
	if err != nil {
		return info, err
	}
	addons, err := d.Heroku.AddonUses(ctx, app)
	if err != nil {
		return info, err
	}
	for _, a := range addons {
		for _, v := range a.ConfigVars {
			delete(vars, v)
		}
	}
	if len(vars) > 0 {
		names := make([]string, 0, len(vars))
		for k := range vars {
			names = append(names, k)
		}
		sort.Strings(names)
		return info, notEmpty("has config vars of its own (" + strings.Join(names, ", ") + "), which the bundle's would overwrite")
	}
	return info, nil
}

// uploadSlug creates a slug on app, PUTs the archived tarball to its blob URL within a deadline
// fitting its size — read through the check of its size and checksum, which fails the PUT before
// its last byte if the bytes are not those recorded — and releases it.
func (d Deployer) uploadSlug(ctx context.Context, app string, rec Record) (int, error) {
	s := rec.Slug
	sl, err := d.Heroku.CreateSlug(ctx, app, heroku.Slug{ProcessTypes: rec.ProcessTypes, Checksum: s.Checksum, Commit: s.Commit, Stack: s.Stack})
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(sl.BlobURL)
	if err != nil || !netguard.Allowed(u) {
		return 0, fmt.Errorf("the slug's upload URL from Heroku is not https")
	}
	rc, err := openSlug(ctx, d.Src, s)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// 2 minutes plus 1 MB/s: a slow link finishes, a dead one does not hold the restore forever.
	deadline := 2*time.Minute + time.Duration(s.Bytes/(1<<20))*time.Second
	pctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPut, sl.BlobURL, rc)
	if err != nil {
		return 0, scrub.StripURL(err)
	}
	req.ContentLength = s.Bytes
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("upload the slug: %w", scrub.StripURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("upload the slug: the blob store answered %s", resp.Status)
	}
	return d.Heroku.ReleaseSlug(ctx, app, sl.ID, fmt.Sprintf("Restored by pgoffsite from %s v%d", rec.App, rec.Release))
}

// LeftToDo is what restore-app cannot do, as the commands to run.
func (p Plan) LeftToDo() string {
	rec, app := p.Bundle.Record, p.App
	var b strings.Builder
	fmt.Fprintf(&b, "\nLeft to do for %s (restored from %s v%d):\n", app, rec.App, rec.Release)
	for _, a := range rec.Addons {
		vars := append([]string(nil), a.ConfigVars...)
		sort.Strings(vars)
		as := ""
		if len(a.Attachments) > 0 {
			as = a.Attachments[0]
		}
		fmt.Fprintf(&b, "  add-on %s (%s, sets %s):\n    heroku addons:create %s -a %s --as %s\n", a.Name, a.Plan, strings.Join(vars, ", "),
			a.Plan, app, as)
		if a.Service == "heroku-postgresql" {
			fmt.Fprintf(&b, "    then its data: pgoffsite restore --from %s/%s/... --to %s:%s_URL --confirm %s (the newest key: pgoffsite status)\n",
				rec.App, strings.ToUpper(as), app, as, app)
		}
	}
	for _, d := range rec.Domains {
		if d.Kind == "custom" {
			fmt.Fprintf(&b, "  domain %s:\n    heroku domains:add %s -a %s (then point its DNS at the target Heroku prints)\n", d.Hostname, d.Hostname, app)
		}
	}
	if len(p.Missing) > 0 {
		fmt.Fprintf(&b, "  config vars archived without values (no ARCHIVE_RECIPIENTS then): %s\n    heroku config:set NAME=value -a %s\n", strings.Join(p.Missing, ", "), app)
	}
	return b.String()
}
