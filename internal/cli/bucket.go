package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/config"
	destkind "github.com/pgoffsite/pgoffsite/internal/dest"
)

// setupBucketOptions are the options of `pgoffsite setup-bucket`: flags whose defaults are the
// BUCKET_* variables.
type setupBucketOptions struct {
	Bucket      bucket.Options
	DryRun      bool
	ArchiveSize string
	Destination string
}

func newSetupBucketCmd(f *Factory) *cobra.Command {
	o := &setupBucketOptions{}
	cmd := &cobra.Command{
		Use:   "setup-bucket [--dry-run]",
		Short: "with administrator credentials, once: make the archive bucket safe",
		Long: "With administrator credentials, once: make the archive bucket safe (versioning, encryption, no public access,\n" +
			"a policy that denies insecure access and version deletion, lifecycle rules to Glacier and expiry). Idempotent:\n" +
			"it changes only what differs. Each flag's default is its BUCKET_* variable. For an azblob:// or gs:// destination\n" +
			"it prints the lifecycle policy and the retention-lock commands to run with az or gcloud, and changes nothing.",
		Example: "  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... pgoffsite setup-bucket --dry-run\n  pgoffsite setup-bucket --transition-days -1 --destination 2",
		Args:    noArgs("the bucket comes from ARCHIVE_URL"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSetupBucket(cmd.Context(), f, cmd.Flags(), o)
		},
	}
	fs, b := cmd.Flags(), &o.Bucket
	fs.BoolVar(&o.DryRun, "dry-run", false, "print what would change and change nothing")
	fs.IntVar(&b.TransitionDays, "transition-days", 0, "days before archives move to --transition-class; -1 = never, for stores without Glacier (env BUCKET_TRANSITION_DAYS)")
	fs.StringVar(&b.TransitionClass, "transition-class", "", "GLACIER, GLACIER_IR or DEEP_ARCHIVE (env BUCKET_TRANSITION_CLASS)")
	fs.IntVar(&b.DeepArchiveDays, "deep-archive-days", 0, "days before archives move on to DEEP_ARCHIVE; 0 = never (env BUCKET_DEEP_ARCHIVE_DAYS)")
	fs.IntVar(&b.ExpireDays, "expire-days", 0, "days before archives expire; 0 = never (env BUCKET_EXPIRE_DAYS)")
	fs.IntVar(&b.NoncurrentExpireDays, "noncurrent-expire-days", 0, "days before overwritten or deleted versions are removed (env BUCKET_NONCURRENT_EXPIRE_DAYS)")
	fs.IntVar(&b.ObjectLockDays, "object-lock-days", 0, "default Object Lock retention in days; 0 = none (env BUCKET_OBJECT_LOCK_DAYS)")
	fs.StringVar(&b.ObjectLockMode, "object-lock-mode", "", "GOVERNANCE (default) or COMPLIANCE, with --object-lock-days (env BUCKET_OBJECT_LOCK_MODE)")
	fs.StringVar(&o.ArchiveSize, "archive-size", "", "with RETENTION: the size of one archive (e.g. 5GiB), for the monthly cost estimate of each class")
	fs.StringVar(&o.Destination, "destination", "", destinationUsage)
	return cmd
}

// unlessGiven sets *dst to v when the flag name was not given: a variable's value as the flag's
// default, read only once the command runs (its help reads no configuration).
func unlessGiven[T any](fs *pflag.FlagSet, name string, dst *T, v T) {
	if !fs.Changed(name) {
		*dst = v
	}
}

// runSetupBucket is `pgoffsite setup-bucket`: run once, with administrator credentials, to make
// the archive bucket safe (versioning, encryption, no public access, a policy that denies
// insecure access and version deletion, lifecycle to Glacier and expiry). Idempotent.
func runSetupBucket(ctx context.Context, f *Factory, fs *pflag.FlagSet, opts *setupBucketOptions) error {
	cfg, err := f.configure(func() (config.Config, error) {
		// An Azure or Google destination needs no S3 one: its steps are printed, not applied.
		if c, err := config.LoadFor("setup-bucket"); err == nil {
			if _, ok, _ := destkind.PickGuide(c.Archives, opts.Destination); ok {
				return c, nil
			}
		}
		return config.LoadArchive()
	})
	if err != nil {
		return err
	}
	o, sizeBytes, err := bucketOptions(fs, cfg, opts)
	if err != nil {
		return err
	}
	if g, ok, err := destkind.PickGuide(cfg.Archives, opts.Destination); err != nil {
		return badUsage("pgoffsite setup-bucket: %v", err)
	} else if ok {
		if err := g.Setup(f.Stdout, o); err != nil {
			return badUsage("pgoffsite setup-bucket %s: %v", g.Archive, err)
		}
		return nil
	}
	a, own, err := destkind.PickBucket(cfg.Archives, opts.Destination)
	if err != nil {
		return badUsage("pgoffsite setup-bucket: %v", err)
	}
	s, err := destkind.ResolveS3(cfg.Env(), a)
	if err != nil {
		return badConfig(err)
	}
	o.Bucket, o.Prefix, o.Region = own.Bucket, own.Prefix, s.Region
	o.SSE, o.KMSKeyID = s.SSE, s.SSEKMSKeyID
	client, err := destkind.S3Client(ctx, cfg.Env(), a)
	if err != nil {
		return err
	}
	r := bucket.RunOptions{Name: a.String(), DryRun: opts.DryRun, ArchiveBytes: sizeBytes}
	if ep := destkind.EffectiveEndpoint(cfg.Env(), a); !destkind.OnAWS(ep) {
		r.OffAWSHost = destkind.EndpointHost(ep)
	}
	if err := bucket.Run(ctx, f.Stdout, client, o, r); err != nil {
		return fmt.Errorf("setup-bucket %s: %w", a, err)
	}
	return nil
}

// bucketOptions are setup-bucket's flags over their BUCKET_* variables, with RETENTION, and
// the --archive-size of the cost estimate.
func bucketOptions(fs *pflag.FlagSet, cfg config.Config, opts *setupBucketOptions) (bucket.Options, int64, error) {
	b, o := cfg.Bucket, opts.Bucket
	unlessGiven(fs, "transition-days", &o.TransitionDays, b.TransitionDays)
	unlessGiven(fs, "transition-class", &o.TransitionClass, b.TransitionClass)
	unlessGiven(fs, "deep-archive-days", &o.DeepArchiveDays, b.DeepArchiveDays)
	unlessGiven(fs, "expire-days", &o.ExpireDays, b.ExpireDays)
	unlessGiven(fs, "noncurrent-expire-days", &o.NoncurrentExpireDays, b.NoncurrentExpireDays)
	unlessGiven(fs, "object-lock-days", &o.ObjectLockDays, b.ObjectLockDays)
	unlessGiven(fs, "object-lock-mode", &o.ObjectLockMode, b.ObjectLockMode)
	var sizeBytes int64
	if opts.ArchiveSize != "" {
		n, ok := config.ParseSize(opts.ArchiveSize)
		if !ok {
			return bucket.Options{}, 0, badUsage("pgoffsite setup-bucket: --archive-size %q is not a size: write it like 800MiB or 5GiB", opts.ArchiveSize)
		}
		sizeBytes = n
	}
	o.Retention = cfg.Retention
	return o, sizeBytes, nil
}

// policyOptions are the options of `pgoffsite policy`.
type policyOptions struct {
	Reader            bool
	KMSKeyARN         string
	ConditionalWrites bool
	Destination       string
}

func newPolicyCmd(f *Factory) *cobra.Command {
	o := &policyOptions{}
	cmd := &cobra.Command{
		Use:   "policy [--reader]",
		Short: "print the IAM policy for the uploader (or the verifier) credentials",
		Long: "Print the IAM policy for the credentials the dyno holds (write under the archive prefix, nothing else) or,\n" +
			"with --reader, for the credentials that verify and restore. Only ARCHIVE_URL is read. For an azblob:// or gs://\n" +
			"destination it prints the az or gcloud commands that make those credentials.",
		Example: "  ARCHIVE_URL=s3://my-archive/pgbackups pgoffsite policy > uploader-policy.json\n  pgoffsite policy --reader",
		Args:    noArgs("the bucket comes from ARCHIVE_URL"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicy(f, o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Reader, "reader", false, "print the read-only policy for restores and verification instead")
	fs.StringVar(&o.KMSKeyARN, "kms-key-arn", "", "also allow encrypting with this KMS key (for S3_SSE=aws:kms)")
	fs.BoolVar(&o.ConditionalWrites, "conditional-writes", true, "deny the uploader every write without If-None-Match (Amazon S3's s3:if-none-match condition key); =false for an S3-compatible store whose policies lack that key (MinIO refuses the policy with it)")
	fs.StringVar(&o.Destination, "destination", "", destinationUsage)
	return cmd
}

// runPolicy is `pgoffsite policy`: the IAM policy for the credentials the dyno holds — write
// under the archive prefix, nothing else — or, with --reader, for the verifying credentials.
func runPolicy(f *Factory, o *policyOptions) error {
	// Only ARCHIVE_URL matters here: the policy is printed before the keys it is for exist.
	cfg, err := f.configure(func() (config.Config, error) {
		archives, err := config.ArchivesFromEnv()
		return config.Config{Archives: archives}, err
	})
	if err != nil {
		return err
	}
	if g, ok, err := destkind.PickGuide(cfg.Archives, o.Destination); err != nil {
		return badUsage("pgoffsite policy: %v", err)
	} else if ok {
		fmt.Fprint(f.Stdout, g.Policy(o.Reader))
		return nil
	}
	_, archive, err := destkind.PickBucket(cfg.Archives, o.Destination)
	if err != nil {
		return badUsage("pgoffsite policy: %v", err)
	}
	var policy []byte
	if o.Reader {
		policy, err = bucket.ReaderPolicy(archive.Bucket, archive.Prefix)
	} else {
		policy, err = bucket.UploaderPolicyWith(archive.Bucket, archive.Prefix,
			bucket.UploaderOptions{KMSKeyARN: o.KMSKeyARN, NoConditionalWrites: !o.ConditionalWrites})
		if err == nil && !o.ConditionalWrites {
			fmt.Fprintln(f.Stderr, "warning: without the conditional-write statement these keys can replace an archive with a plain PUT; the bucket's versions keep what it replaced, and pgoffsite status and verify (with the reader's keys) report it")
		}
	}
	if err != nil {
		return badUsage("pgoffsite: policy: %v", err)
	}
	fmt.Fprintf(f.Stdout, "%s\n", policy)
	return nil
}

const destinationUsage = "the S3 destination to work on when ARCHIVE_URL names several: its number in ARCHIVE_URL (1 is the first) or its s3://bucket/prefix"
