package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// runRestoreApp is `pgoffsite restore-app`: an app bundle put back into a new (or existing,
// empty) app: region and stack, buildpacks, config vars, slug, release, formation. What it
// cannot do (add-ons, domains, the database) it prints as the commands to run.
func runRestoreApp(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the bundle's release.json key under ARCHIVE_URL, as the backup's log names it (required)")
	to := fs.String("to", "", "the app to restore into: created when it does not exist, else it must have no slug yet (required)")
	confirm := fs.String("confirm", "", "the app's name again")
	identity := fs.String("identity", "", "age identity file that decrypts the config values (config.age); default: the text of AGE_IDENTITY")
	dest := fs.String("destination", "", "read the bundle from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "pgoffsite restore-app: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	case *from == "" || *to == "":
		fmt.Fprintln(stderr, "pgoffsite restore-app: --from KEY (a bundle's release.json) and --to NEW_APP are required")
		return ExitUsage
	case !strings.HasSuffix(*from, "/release.json"):
		fmt.Fprintf(stderr, "pgoffsite restore-app: --from %s is not a bundle's release.json key (APP/_app/vN/release.json)\n", *from)
		return ExitUsage
	case *confirm != *to:
		fmt.Fprintf(stderr, "pgoffsite restore-app: this sets up the app %s from the bundle; to proceed, add --confirm %s\n", *to, *to)
		return ExitUsage
	}
	cfg, err := loadForReading(*dest, "BACKUP_TARGETS")
	if err != nil {
		return badConfig(stderr, err)
	}
	ids, idSecrets, idErr := loadIdentities(*identity)
	if idErr != nil {
		return badConfig(stderr, withIdentityProblem(nil, idErr, idSecrets))
	}
	red := newRedactor(cfg, idSecrets...)
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red).With().Str("app", *to).Str("bundle", *from).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Msg("restore-app FAILED")
		return ExitFailed
	}
	src, err := openSource(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	var rec BundleRecord
	if err := readJSON(ctx, src, *from, 16<<20, &rec); err != nil {
		return fail(err)
	}
	// The config values, decrypted before anything is changed on Heroku.
	values := map[string]string{}
	if rec.ConfigValues != nil {
		if ids == nil {
			return badConfig(stderr, errors.New("  AGE_IDENTITY: the bundle's config values are encrypted (config.age): give the identity that decrypts them (AGE_IDENTITY, or --identity FILE)"))
		}
		rc, _, err := src.Open(ctx, rec.ConfigValues.Key)
		if err != nil {
			return fail(fmt.Errorf("read %s: %w", rec.ConfigValues.Key, err))
		}
		plain, err := ids.DecryptReader(rc)
		if err == nil {
			err = json.NewDecoder(io.LimitReader(plain, 64<<20)).Decode(&values)
		}
		rc.Close()
		if err != nil {
			return fail(fmt.Errorf("decrypt %s: %w", rec.ConfigValues.Key, err))
		}
		for _, v := range values {
			if len(v) >= 4 {
				red.Add(v)
			}
		}
	}
	hk := herokuClient(cfg)
	app := *to
	info, err := prepareApp(ctx, hk, app, rec)
	if err != nil {
		return fail(err)
	}
	if info.Region != rec.Region || info.Stack != rec.Stack {
		log.Warn().Str("region", info.Region).Str("stack", info.Stack).Str("bundle_region", rec.Region).Str("bundle_stack", rec.Stack).
			Msg("the existing app runs in another region or on another stack than the bundle's app (a slug only runs on its stack)")
	}
	log.Info().Str("region", info.Region).Str("stack", info.Stack).Msg("app ready")
	if len(rec.Buildpacks) > 0 {
		if err := hk.SetBuildpacks(ctx, app, rec.Buildpacks); err != nil {
			return fail(err)
		}
	}
	owned := map[string]bool{}
	for _, a := range rec.Addons {
		for _, v := range a.ConfigVars {
			owned[v] = true
		}
	}
	set := map[string]heroku.Secret{}
	var missing []string
	for _, name := range rec.ConfigVarNames {
		v, ok := values[name]
		switch {
		case owned[name]:
			// Set by the add-on once it is provisioned on the new app.
		case ok:
			set[name] = heroku.Secret(v)
		default:
			missing = append(missing, name)
		}
	}
	if len(set) > 0 {
		if err := hk.SetConfigVars(ctx, app, set); err != nil {
			return fail(err)
		}
	}
	log.Info().Int("config_vars", len(set)).Int("addon_vars_skipped", len(owned)).Msg("config vars set")
	if rec.Slug != nil {
		version, err := uploadSlug(ctx, hk, src, app, rec)
		if err != nil {
			return fail(err)
		}
		log.Info().Int64("bytes", rec.Slug.Bytes).Int("release", version).Msg("slug uploaded and released")
		if len(rec.Formation) > 0 {
			if err := hk.Scale(ctx, app, rec.Formation); err != nil {
				return fail(err)
			}
			log.Info().Int("process_types", len(rec.Formation)).Msg("formation scaled")
		}
	}
	fmt.Fprint(stderr, leftToDo(rec, app, missing))
	log.Info().Msg("restore-app finished: see above for what is left to do")
	return ExitOK
}

// prepareApp creates the app in the bundle's region and stack, or accepts an existing one that
// runs nothing yet: a restore never replaces a running app's code.
func prepareApp(ctx context.Context, hk *heroku.Client, app string, rec BundleRecord) (heroku.AppInfo, error) {
	info, err := hk.AppInfo(ctx, app)
	if heroku.IsNotFound(err) {
		if err := hk.CreateApp(ctx, app, rec.Region, rec.Stack); err != nil {
			return info, err
		}
		return hk.AppInfo(ctx, app)
	}
	if err != nil {
		return info, err
	}
	releases, err := hk.Releases(ctx, app, 10)
	if err != nil {
		return info, err
	}
	for _, r := range releases {
		if r.SlugID != "" {
			return info, fmt.Errorf("the app %s exists and has released code (v%d): restore-app only sets up a new or empty app", app, r.Version)
		}
	}
	return info, nil
}

// uploadSlug creates a slug on app, PUTs the archived tarball to its blob URL within a deadline
// fitting its size, and releases it.
func uploadSlug(ctx context.Context, hk *heroku.Client, src verify.Source, app string, rec BundleRecord) (int, error) {
	s := rec.Slug
	sl, err := hk.CreateSlug(ctx, app, heroku.Slug{ProcessTypes: rec.ProcessTypes, Checksum: s.Checksum, Commit: s.Commit, Stack: s.Stack})
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(sl.BlobURL)
	if err != nil || !netguard.Allowed(u) {
		return 0, fmt.Errorf("the slug's upload URL from Heroku is not https")
	}
	rc, size, err := src.Open(ctx, s.Key)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", s.Key, err)
	}
	defer rc.Close()
	if size >= 0 && size != s.Bytes {
		return 0, fmt.Errorf("the archived slug %s is %d bytes, its bundle says %d", s.Key, size, s.Bytes)
	}
	// 2 minutes plus 1 MB/s: a slow link finishes, a dead one does not hold the restore forever.
	deadline := 2*time.Minute + time.Duration(s.Bytes/(1<<20))*time.Second
	pctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPut, sl.BlobURL, rc)
	if err != nil {
		return 0, scrub.StripURL(err)
	}
	req.ContentLength = s.Bytes
	resp, err := downloadClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("upload the slug: %w", scrub.StripURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("upload the slug: the blob store answered %s", resp.Status)
	}
	return hk.ReleaseSlug(ctx, app, sl.ID, fmt.Sprintf("Restored by pgoffsite from %s v%d", rec.App, rec.Release))
}

func readJSON(ctx context.Context, src verify.Source, key string, limit int64, v any) error {
	rc, _, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, limit)).Decode(v); err != nil {
		return fmt.Errorf("read %s: not a bundle's release.json: %w", key, err)
	}
	return nil
}

// leftToDo is what restore-app cannot do, as the commands to run.
func leftToDo(rec BundleRecord, app string, missing []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nLeft to do for %s (restored from %s v%d):\n", app, rec.App, rec.Release)
	for _, a := range rec.Addons {
		vars := append([]string(nil), a.ConfigVars...)
		sort.Strings(vars)
		fmt.Fprintf(&b, "  add-on %s (%s, sets %s):\n    heroku addons:create %s -a %s --as %s\n", a.Name, a.Plan, strings.Join(vars, ", "),
			a.Plan, app, a.Attachments[0])
		if a.Service == "heroku-postgresql" {
			fmt.Fprintf(&b, "    then its data: pgoffsite restore --from %s/%s/... --to %s:%s_URL --confirm %s (the newest key: pgoffsite status)\n",
				rec.App, strings.ToUpper(a.Attachments[0]), app, a.Attachments[0], app)
		}
	}
	for _, d := range rec.Domains {
		if d.Kind == "custom" {
			fmt.Fprintf(&b, "  domain %s:\n    heroku domains:add %s -a %s (then point its DNS at the target Heroku prints)\n", d.Hostname, d.Hostname, app)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "  config vars archived without values (no ARCHIVE_RECIPIENTS then): %s\n    heroku config:set NAME=value -a %s\n", strings.Join(missing, ", "), app)
	}
	return b.String()
}
