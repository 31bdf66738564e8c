package cli

import (
	"context"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/listing"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// verifyOptions are the options of `pgoffsite verify`.
type verifyOptions struct {
	From, RestoreTo, Identity, Destination string
	Jobs                                   int
	Scratch                                string
}

func newVerifyCmd(f *Factory) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [--from latest|TARGET@YYYY-MM-DD|KEY] [--restore-to DATABASE_URL] [--identity FILE]",
		Short: "with read credentials: check the newest archives against their manifests and structure",
		Long: "With read credentials: check the newest archive of each target (or one --from) against its manifest and its\n" +
			"structure; with --restore-to, restore it into a scratch database and count its rows. It reports like a\n" +
			"backup run (heartbeat, webhook) and records what it found beside the archive for pgoffsite status.",
		Example: "  pgoffsite verify\n  pgoffsite verify --from shop:DATABASE@2026-01-02 --restore-to postgres://localhost/scratch",
		Args:    noArgs("targets come from BACKUP_TARGETS, or one archive from --from"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "verify this archive instead of each target's newest: "+listing.Forms+" (pgoffsite list shows them)")
	fs.StringVar(&o.RestoreTo, "restore-to", "", "scratch database URL: restore the archive there with pg_restore and compare row counts (an empty database, which the verification fills; checked first)")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts encrypted archives (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "verify the copies at this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	jobsFlags(fs, &o.Jobs, &o.Scratch)
	return cmd
}

// runVerify is `pgoffsite verify`: with read credentials, check the newest archive of each target
// (or one --key) against its manifest, its structure, and with --restore-to a real restore.
// It can run from Heroku Scheduler as a drill and reports like the backup job.
func runVerify(ctx context.Context, f *Factory, opts *verifyOptions) error {
	if err := checkJobs(opts.Jobs, opts.Scratch); err != nil {
		return badUsage("pgoffsite verify: %v", err)
	}
	f.load = func() (config.Config, error) { return loadForReading(opts.Destination, "verify") }
	cfg, ids, err := loadWithIdentity(f, opts.Identity)
	if err != nil {
		return err
	}
	f.AddSecrets(opts.RestoreTo)
	// A scratch database that cannot be used is the caller's mistake, not the archive's: found
	// before any archive is read, it stops the run without a verdict (and without a record).
	if err := verify.Scratch(ctx, verify.Options{RestoreTo: opts.RestoreTo}); err != nil {
		return badUsage("%v", err)
	}
	red, log := f.Redactor(), f.Logger()
	if opts.From != "" {
		if opts.From, err = f.resolveFrom(ctx, opts.From, listing.Dump); err != nil {
			return err
		}
	}
	notifier, err := f.Notifier("verify")
	if err != nil {
		return err
	}
	src, err := f.readSource(ctx, cfg)
	if err != nil {
		return err
	}
	started := f.begin(ctx, notifier, "the verification")
	results := verify.Run(ctx, verifyDeps(cfg, src, log, red), verify.RunOptions{
		Options: verify.Options{RestoreTo: opts.RestoreTo, Identities: ids, Jobs: opts.Jobs, Scratch: opts.Scratch}, Key: opts.From, Targets: archiveTargets(cfg)})
	ok := report.Verify(log, results, ctx.Err() != nil)
	report.Finish(ctx, log, notifier, "verify", started, results)
	return failedUnless(ok)
}

// verifyDeps are what a verification (verify's, a drill's) works with at the source: its
// records, the redactor for what they say, the bucket for the way out of Glacier.
func verifyDeps(cfg config.Config, src *dest.Source, log zerolog.Logger, red *logging.Redactor) verify.Deps {
	return verify.Deps{Source: src, Records: src.Caps.Records, Log: log, Scrub: red.Scrub, Glacier: glacierOf(cfg)}
}
