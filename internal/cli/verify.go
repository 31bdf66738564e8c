package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/report"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/verify"
	"github.com/pgoffsite/pgoffsite/internal/version"
)

// verifyOptions are the options of `pgoffsite verify`.
type verifyOptions struct {
	Key, RestoreTo, Identity, Destination string
}

func newVerifyCmd(f *Factory) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [--key KEY] [--restore-to DATABASE_URL] [--identity FILE]",
		Short: "with read credentials: check the newest archives against their manifests and structure",
		Long: "With read credentials: check the newest archive of each target (or one --key) against its manifest and its\n" +
			"structure; with --restore-to, restore it into a scratch database and count its rows. It reports like a\n" +
			"backup run (heartbeat, webhook) and records what it found beside the archive for pgoffsite status.",
		Example: "  pgoffsite verify\n  pgoffsite verify --key shop/DATABASE_URL/2026/01/02/b042.dump --restore-to postgres://localhost/scratch",
		Args:    noArgs("targets come from BACKUP_TARGETS, or one archive from --key"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd.Context(), f, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Key, "key", "", "verify this archive (its .dump or .dump.age key under ARCHIVE_URL) instead of each target's newest")
	fs.StringVar(&o.RestoreTo, "restore-to", "", "scratch database URL: restore the archive there with pg_restore and compare row counts (its tables are replaced)")
	fs.StringVar(&o.Identity, "identity", "", "age identity file that decrypts encrypted archives (.dump.age); default: the text of AGE_IDENTITY")
	fs.StringVar(&o.Destination, "destination", "", "verify the copies at this destination of ARCHIVE_URL (its number, 1-based, or its URL); default: the first")
	return cmd
}

// runVerify is `pgoffsite verify`: with read credentials, check the newest archive of each target
// (or one --key) against its manifest, its structure, and with --restore-to a real restore.
// It can run from Heroku Scheduler as a drill and reports like the backup job.
func runVerify(ctx context.Context, f *Factory, opts *verifyOptions) error {
	f.load = func() (config.Config, error) { return loadForReading(opts.Destination, "verify") }
	cfg, err := f.Config()
	ids, idSecrets, idErr := loadIdentities(opts.Identity, cfg.AgeIdentity)
	if err := withIdentityProblem(err, idErr, idSecrets); err != nil {
		return badConfig(err)
	}
	f.AddSecrets(append([]string{opts.RestoreTo}, idSecrets...)...)
	red, log := f.Redactor(), f.Logger()
	notifier, err := f.Notifier()
	if err != nil {
		return err
	}
	src, err := f.Source(ctx)
	if err != nil {
		log.Error().Err(err).Str("archive", cfg.Archive.String()).Msg("cannot open the archive")
		return exitWith(ExitFailed)
	}
	started := f.Now()
	if err := notifier.Start(ctx); err != nil {
		log.Warn().Err(err).Msg("heartbeat start ping failed (the verification goes on)")
	}
	o := verify.Options{RestoreTo: opts.RestoreTo, Identities: ids}
	var results []archive.Result
	check := func(t archive.Target, k string) {
		begin := time.Now()
		r := archive.Result{Target: t, Key: k, Location: src.Location(k)}
		v := verify.Archive(ctx, src, k, o)
		v.Err = withFindings(v.Err, v.Findings)
		if v.VersionsErr != nil {
			log.Warn().Str("app", t.App).Str("database", t.Database).Str("location", r.Location).Err(v.VersionsErr).
				Msg("the store's versions of the archive were not compared: an overwrite cannot be seen")
		}
		r.Backup, r.Bytes, r.Err, r.Duration = v.Manifest.Backup, v.Manifest.Bytes, explainArchived(v.Err, cfg, k), time.Since(begin)
		if r.Err == nil {
			restored := ""
			if v.Restored {
				restored = ", restored and counted"
			}
			ev := log.Info().Str("app", t.App).Str("database", t.Database).Str("backup", r.Backup).Int64("bytes", r.Bytes).
				Int("tables", v.Tables).Int64("rows", v.Rows).Str("location", r.Location)
			if v.Encrypted {
				ev = ev.Bool("encrypted", true).Int64("plaintext_bytes", v.Manifest.Encryption.PlaintextBytes)
			}
			if len(v.FramingOnly) > 0 || v.OtherFramingOnly > 0 {
				// The backup could not vouch for this data; this verification has decompressed it.
				ev = ev.Strs("framing_only_at_backup", v.FramingOnly).Int("other_framing_only_at_backup", v.OtherFramingOnly)
			}
			msg := "verified: size, SHA-256 and structure match the manifest"
			if v.Encrypted {
				msg = "verified: decrypted while streaming; size and SHA-256 of the encrypted and the decrypted archive, and the structure, match the manifest"
			}
			ev.Msg(msg + restored)
		}
		recordVerification(ctx, log, red, src, k, v, nil)
		results = append(results, r)
	}
	if opts.Key != "" {
		t := archive.Target{App: "-", Database: "-"}
		if info, ok := catalog.ParseKey(opts.Key); ok {
			t = archive.Target{App: info.App, Database: info.Database}
		}
		check(t, opts.Key)
	} else {
		for _, t := range cfg.Targets {
			target := archive.Target{App: t.App, Database: t.Database, Env: t.Env}
			latest := verify.Latest
			if t.Env {
				latest = func(ctx context.Context, src verify.Source, _, variable string) (string, error) {
					return verify.LatestEnv(ctx, src, variable)
				}
			}
			k, err := latest(ctx, src, t.App, t.Database)
			if err != nil {
				results = append(results, archive.Result{Target: target, Err: err})
				continue
			}
			check(target, k)
		}
	}
	ok := report.Verify(log, results, ctx.Err() != nil)
	report.Finish(ctx, log, notifier, "verify", started, results)
	return failedUnless(ok)
}

// withFindings fails a verification on what the store's record of the archive shows beyond its
// bytes (verify.Result.Findings): an archive overwritten, or written after its manifest, may
// match a manifest that was replaced with it.
func withFindings(err error, findings []string) error {
	var extra []string
	for _, f := range findings {
		if err == nil || !strings.Contains(err.Error(), f) {
			extra = append(extra, f)
		}
	}
	switch {
	case len(extra) == 0:
		return err
	case err == nil:
		return fmt.Errorf("the store's record of the archive does not match its manifest: %s; check who holds the uploader's keys", strings.Join(extra, "; "))
	}
	return fmt.Errorf("%w; and %s", err, strings.Join(extra, "; "))
}

// recordVerification keeps what the verification found beside the manifest (.verified.json)
// for pgoffsite status. It cannot fail the verification: a destination or credentials that do
// not allow it are a warning.
// A drill passes what it did beyond the verification; v.Err is then the drill's own verdict.
func recordVerification(ctx context.Context, log zerolog.Logger, red *logging.Redactor, src *source, key string, v verify.Result, drill *catalog.Drill) {
	if _, ok := catalog.ParseKey(key); !ok {
		return
	}
	rec := src.caps.Records
	if rec == nil {
		log.Warn().Str("location", src.Location(key)).Msg("this destination cannot keep verification records: pgoffsite status will not show this verification")
		return
	}
	vr := catalog.Verification{Key: key, Backup: v.Manifest.Backup, VerifiedAt: time.Now().UTC(), Passed: v.Err == nil,
		Tables: v.Tables, Rows: v.Rows, Restored: v.Restored, PgoffsiteVersion: version.Version, Drill: drill}
	if vr.Backup == "" {
		if info, ok := catalog.ParseKey(key); ok {
			vr.Backup = info.Backup
		}
	}
	if v.Err != nil {
		vr.Error = red.Scrub(v.Err.Error()) // the record is read by whoever can read the bucket
	}
	body, err := json.MarshalIndent(vr, "", "  ")
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = rec.Replace(rctx, catalog.VerifiedKey(key), body)
	}
	if err != nil {
		log.Warn().Err(err).Str("location", src.Location(catalog.VerifiedKey(key))).
			Msg("cannot record the verification for pgoffsite status (the verification's result is unchanged; the verifier's credentials need the policy of pgoffsite policy --reader)")
	}
}

// explainArchived adds the way out to an archive that lifecycle rules moved to Glacier.
func explainArchived(err error, cfg config.Config, key string) error {
	if !errors.Is(err, s3store.ErrArchived) {
		return err
	}
	full := key
	if cfg.Archive.Prefix != "" {
		full = cfg.Archive.Prefix + "/" + key
	}
	return fmt.Errorf("%w: restore it from Glacier first (hours for GLACIER, up to 12 h for DEEP_ARCHIVE): aws s3api restore-object --bucket %s --key %s --restore-request 'Days=3,GlacierJobParameters={Tier=Standard}', then run verify again",
		err, cfg.Archive.Bucket, full)
}

// source is the destination the reading commands read (verify, status, restore), with what
// else its kind can do there: keep verification records, close its connection.
type source struct {
	store.Reader
	caps store.Caps
}

// Close ends the source's connection, if it holds one.
func (s *source) Close() error {
	if s.caps.Close == nil {
		return nil
	}
	return s.caps.Close()
}

// openSource opens the destination cfg.Archive for reading: S3 with the reader's credentials
// (the uploader's cannot read), the other kinds as a backup opens them.
func openSource(ctx context.Context, cfg config.Config) (*source, error) {
	c, err := dest.OpenReader(ctx, cfg, cfg.Archive)
	if err != nil {
		return nil, err
	}
	return &source{Reader: c.Reader, caps: c}, nil
}
