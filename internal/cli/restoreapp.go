package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// runRestoreApp is `pgoffsite restore-app`: an app bundle put back into a new (or existing,
// empty) app. internal/bundle checks the bundle and deploys it; this reads the flags and the
// configuration, prints the plan, and turns the outcome into an exit status.
func runRestoreApp(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the bundle's release.json key under ARCHIVE_URL, as the bundle's log line names it (required)")
	to := fs.String("to", "", "the app to restore into: created when it does not exist, else it must be empty (required)")
	confirm := fs.String("confirm", "", "the app's name again")
	identity := fs.String("identity", "", "age identity file that decrypts the config values (config.age); default: the text of AGE_IDENTITY")
	dest := fs.String("destination", "", "read the bundle from this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	verifyKey := fs.String("verify-key", "", "file holding the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub): refuse a bundle it did not sign; default: BUNDLE_VERIFY_KEY")
	var allow bundle.Allow
	fs.BoolVar(&allow.BuildpackURL, "allow-buildpack-url", false, "deploy buildpacks given by URL, not only those of Heroku's buildpack registry")
	fs.BoolVar(&allow.Formation, "allow-formation", false, fmt.Sprintf("scale the recorded formation even past standard dyno sizes or %d dynos in all", bundle.FormationCapDynos))
	allowUnbound := fs.Bool("allow-unbound-config", false, "accept config values that pgoffsite archived before they were bound to their release (bundle_version 1)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	_, _, keyErr := bundle.ParseKey(*from)
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "pgoffsite restore-app: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	case *from == "" || *to == "":
		fmt.Fprintln(stderr, "pgoffsite restore-app: --from KEY (a bundle's release.json) and --to NEW_APP are required")
		return ExitUsage
	case keyErr != nil:
		fmt.Fprintf(stderr, "pgoffsite restore-app: --from %s is %v\n", *from, keyErr)
		return ExitUsage
	case *confirm != *to:
		fmt.Fprintf(stderr, "pgoffsite restore-app: this sets up the app %s from the bundle; to proceed, add --confirm %s\n", *to, *to)
		return ExitUsage
	}
	cfg, err := loadForReading(*dest, "restore-app")
	if err != nil {
		return badConfig(stderr, err)
	}
	checks := bundle.Checks{VerifyKey: cfg.BundleVerifyKey, AllowUnbound: *allowUnbound}
	if checks.VerifyKey.IsZero() && !cfg.BundleSigningKey.IsZero() {
		// Where the bundles are signed, their signature is checked without being asked.
		checks.VerifyKey = cfg.BundleSigningKey.Public()
	}
	if *verifyKey != "" {
		if checks.VerifyKey, err = readVerifyKey(*verifyKey); err != nil {
			return badConfig(stderr, err)
		}
	}
	ids, idSecrets, idErr := loadIdentities(*identity, cfg.AgeIdentity)
	if idErr != nil {
		return badConfig(stderr, withIdentityProblem(nil, idErr, idSecrets))
	}
	checks.Identities = ids
	red := newRedactor(cfg, idSecrets...)
	log := logging.New(stderr, cfg.LogFormat, cfg.LogLevel, red).With().Str("app", *to).Str("bundle", *from).Logger()
	fail := func(err error) int {
		log.Error().Err(err).Msg("restore-app FAILED: nothing was changed on Heroku")
		return ExitFailed
	}
	src, err := openSource(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	// Everything the bundle says is checked before anything is asked of Heroku.
	d := bundle.Deployer{Heroku: herokuClient(cfg), Src: src, HTTP: downloadClient(), Log: log}
	err = bundle.RestoreApp(ctx, bundle.RestoreDeps{Src: src, Deployer: d, Out: stderr, Redactor: red},
		bundle.RestoreOptions{From: *from, To: *to, Checks: checks, Allow: allow})
	var refused *bundle.RefusedError
	var deployErr *bundle.DeployError
	switch {
	case err == nil:
		log.Info().Msg("restore-app finished: see above for what is left to do")
		return ExitOK
	case errors.Is(err, bundle.ErrNoIdentity):
		return badConfig(stderr, fmt.Errorf("  AGE_IDENTITY: %w", err))
	case errors.Is(err, bundle.ErrUnbound):
		log.Error().Err(err).Msg("restore-app refused: nothing was changed on Heroku")
		return ExitUsage // --allow-unbound-config accepts it, as --confirm does the restore itself
	case errors.As(err, &refused):
		fmt.Fprintf(stderr, "\npgoffsite restore-app: %s\n", refused)
		if refused.Overridable() {
			return ExitUsage // a flag accepts each of them, as --confirm does the restore itself
		}
		return ExitFailed
	case errors.As(err, &deployErr):
		log.Error().Err(err).Msg("restore-app FAILED")
		return ExitFailed
	}
	return fail(err)
}

// readVerifyKey reads --verify-key FILE: the public half of BUNDLE_SIGNING_KEY.
func readVerifyKey(path string) (bundle.VerifyKey, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 64<<10 {
		err = errors.New("is far larger than a public key file")
	}
	if err != nil {
		return bundle.VerifyKey{}, fmt.Errorf("  --verify-key %s: cannot read it: %w", path, err)
	}
	k, err := bundle.ParseVerifyKey(string(b))
	if err != nil {
		return bundle.VerifyKey{}, fmt.Errorf("  --verify-key %s: %w — give the public half of BUNDLE_SIGNING_KEY (bundle-signing.pub)", path, err)
	}
	return k, nil
}
