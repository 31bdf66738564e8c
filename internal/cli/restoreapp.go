package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/listing"
)

// restoreAppOptions are the options of `pgoffsite restore-app`.
type restoreAppOptions struct {
	From, To, Confirm, Identity, Destination, VerifyKey string
	Allow                                               bundle.Allow
	AllowUnbound                                        bool
}

func newRestoreAppCmd(f *Factory) *cobra.Command {
	o := &restoreAppOptions{}
	cmd := &cobra.Command{
		Use:   "restore-app --from latest|APP@YYYY-MM-DD|KEY --to NEW_APP --confirm NEW_APP [--identity FILE] [--verify-key FILE]",
		Short: "put an app bundle back into a new or empty app, after checking it and printing what it deploys",
		Long: "Put an app bundle (KEY: its release.json) back into a new or empty app, after checking it (signature,\n" +
			"checksums, the release its config values are bound to) and printing what it will deploy.",
		Example: "  pgoffsite restore-app --from bundles/shop/2026/01/02/v42/release.json --to shop-restored --confirm shop-restored --identity key.txt",
		Args:    noArguments,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestoreApp(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "the bundle: latest, APP@latest, APP@YYYY-MM-DD (the newest written that day), its release.json key, or its location (required)")
	fs.StringVar(&o.To, "to", "", "the app to restore into: created when it does not exist, else it must be empty (required)")
	fs.StringVar(&o.Confirm, "confirm", "", "the app's name again")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts the config values (config.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "read the bundle from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	fs.StringVar(&o.VerifyKey, "verify-key", "", "file holding the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub): refuse a bundle it did not sign; default: BUNDLE_VERIFY_KEY")
	fs.BoolVar(&o.Allow.BuildpackURL, "allow-buildpack-url", false, "deploy buildpacks given by URL, not only those of Heroku's buildpack registry")
	fs.BoolVar(&o.Allow.Formation, "allow-formation", false, fmt.Sprintf("scale the recorded formation even past standard dyno sizes or %d dynos in all", bundle.FormationCapDynos))
	fs.BoolVar(&o.AllowUnbound, "allow-unbound-config", false, "accept config values that pgoffsite archived before they were bound to their release (bundle_version 1)")
	return cmd
}

// runRestoreApp is `pgoffsite restore-app`: an app bundle put back into a new (or existing,
// empty) app. internal/bundle checks the bundle and deploys it; this reads the options and the
// configuration, prints the plan, and turns the outcome into an exit status.
func runRestoreApp(ctx context.Context, f *Factory, o *restoreAppOptions) error {
	stderr := f.Stderr
	_, _, keyErr := bundle.ParseKey(o.From)
	switch {
	case o.From == "" || o.To == "":
		return badUsage("pgoffsite restore-app: --from KEY (a bundle's release.json) and --to NEW_APP are required")
	case keyErr != nil && !listing.ByName(o.From) && !listing.IsLocation(o.From):
		return badUsage("pgoffsite restore-app: --from %s is %v", o.From, keyErr)
	case o.Confirm != o.To:
		return badUsage("pgoffsite restore-app: this sets up the app %s from the bundle; to proceed, add --confirm %s", o.To, o.To)
	}
	f.load = func() (config.Config, error) { return loadForReading(o.Destination, "restore-app") }
	cfg, ids, err := loadWithIdentity(f, o.Identity)
	if err != nil {
		return err
	}
	key, err := bundle.TrustedKey(o.VerifyKey, cfg.BundleVerifyKey, cfg.BundleSigningKey)
	if err != nil {
		return badConfig(fmt.Errorf("  --verify-key %s: %w", o.VerifyKey, err))
	}
	checks := bundle.Checks{VerifyKey: key, AllowUnbound: o.AllowUnbound, Identities: ids}
	red := f.Redactor()
	if o.From, err = f.resolveFrom(ctx, o.From, listing.Bundle); err != nil {
		return err
	}
	if _, _, err := bundle.ParseKey(o.From); err != nil {
		return badUsage("pgoffsite restore-app: --from names %s, which is %v", o.From, err)
	}
	log := f.Logger().With().Str("app", o.To).Str("bundle", o.From).Logger()
	src, err := f.Source(ctx)
	if err != nil {
		return restoreAppExit(log, stderr, err) // nothing was changed
	}
	// Everything the bundle says is checked before anything is asked of Heroku.
	d := bundle.Deployer{Heroku: f.Heroku(), Src: src, HTTP: fetch.DownloadClient(), Log: log}
	err = bundle.RestoreApp(ctx, bundle.RestoreDeps{Src: src, Deployer: d, Out: stderr, Redactor: red},
		bundle.RestoreOptions{From: o.From, To: o.To, Checks: checks, Allow: o.Allow})
	return restoreAppExit(log, stderr, err)
}

// restoreAppExit turns restore-app's outcome into its exit: the refusals that a flag accepts
// are usage errors, as --confirm is for the restore itself.
func restoreAppExit(log zerolog.Logger, stderr io.Writer, err error) error {
	var refused *bundle.RefusedError
	var deployErr *bundle.DeployError
	switch {
	case err == nil:
		log.Info().Msg("restore-app finished: see above for what is left to do")
		return nil
	case errors.Is(err, bundle.ErrNoIdentity):
		return badConfig(fmt.Errorf("  AGE_IDENTITY: %w", err))
	case errors.Is(err, bundle.ErrUnbound):
		log.Error().Err(err).Msg("restore-app refused: nothing was changed on Heroku")
		return exitWith(ExitUsage) // --allow-unbound-config accepts it, as --confirm does the restore itself
	case errors.As(err, &refused):
		fmt.Fprintf(stderr, "\npgoffsite restore-app: %s\n", refused)
		if refused.Overridable() {
			return exitWith(ExitUsage) // a flag accepts each of them, as --confirm does the restore itself
		}
		return exitWith(ExitFailed)
	case errors.As(err, &deployErr):
		log.Error().Err(err).Msg("restore-app FAILED")
		return exitWith(ExitFailed)
	}
	log.Error().Err(err).Msg("restore-app FAILED: nothing was changed on Heroku")
	return exitWith(ExitFailed)
}
