package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/config"
	destkind "github.com/pgoffsite/pgoffsite/internal/dest"
)

// runSetupBucket is `pgoffsite setup-bucket`: run once, with administrator credentials, to make
// the archive bucket safe (versioning, encryption, no public access, a policy that denies
// insecure access and version deletion, lifecycle to Glacier and expiry). Idempotent.
func runSetupBucket(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The BUCKET_* variables are the flags' defaults: read (and checked) first.
	cfg, err := config.LoadArchive()
	if err != nil {
		return badConfig(stderr, err)
	}
	b := cfg.Bucket
	fs := flag.NewFlagSet("setup-bucket", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print what would change and change nothing")
	o := bucket.Options{}
	fs.IntVar(&o.TransitionDays, "transition-days", b.TransitionDays, "days before archives move to --transition-class; -1 = never, for stores without Glacier (env BUCKET_TRANSITION_DAYS)")
	fs.StringVar(&o.TransitionClass, "transition-class", b.TransitionClass, "GLACIER, GLACIER_IR or DEEP_ARCHIVE (env BUCKET_TRANSITION_CLASS)")
	fs.IntVar(&o.DeepArchiveDays, "deep-archive-days", b.DeepArchiveDays, "days before archives move on to DEEP_ARCHIVE; 0 = never (env BUCKET_DEEP_ARCHIVE_DAYS)")
	fs.IntVar(&o.ExpireDays, "expire-days", b.ExpireDays, "days before archives expire; 0 = never (env BUCKET_EXPIRE_DAYS)")
	fs.IntVar(&o.NoncurrentExpireDays, "noncurrent-expire-days", b.NoncurrentExpireDays, "days before overwritten or deleted versions are removed (env BUCKET_NONCURRENT_EXPIRE_DAYS)")
	fs.IntVar(&o.ObjectLockDays, "object-lock-days", b.ObjectLockDays, "default Object Lock retention in days; 0 = none (env BUCKET_OBJECT_LOCK_DAYS)")
	fs.StringVar(&o.ObjectLockMode, "object-lock-mode", b.ObjectLockMode, "GOVERNANCE (default) or COMPLIANCE, with --object-lock-days (env BUCKET_OBJECT_LOCK_MODE)")
	archiveSize := fs.String("archive-size", "", "with RETENTION: the size of one archive (e.g. 5GiB), for the monthly cost estimate of each class")
	dest := fs.String("destination", "", destinationUsage)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	var sizeBytes int64
	if *archiveSize != "" {
		n, ok := config.ParseSize(*archiveSize)
		if !ok {
			fmt.Fprintf(stderr, "pgoffsite setup-bucket: --archive-size %q is not a size: write it like 800MiB or 5GiB\n", *archiveSize)
			return ExitUsage
		}
		sizeBytes = n
	}
	o.Retention = cfg.Retention
	a, err := pickS3Destination(cfg, *dest)
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite setup-bucket: %v\n", err)
		return ExitUsage
	}
	s, err := destkind.ResolveS3(cfg, a)
	if err != nil {
		return badConfig(stderr, err)
	}
	o.Bucket, o.Prefix, o.Region = a.Bucket, a.Prefix, s.Region
	o.SSE, o.KMSKeyID = s.SSE, s.SSEKMSKeyID
	client, err := destkind.S3Client(ctx, cfg, a)
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: %v\n", err)
		return ExitFailed
	}
	if ep := destkind.EffectiveEndpoint(cfg, a); !destkind.OnAWS(ep) && o.TransitionDays >= 0 {
		// Not refused: a store may have tiers by those names (MinIO can), but most have none.
		classes := o.TransitionClass + ", an Amazon S3 storage class"
		if o.Retention.Set() {
			classes = "STANDARD_IA, GLACIER and DEEP_ARCHIVE (by retention class), Amazon S3 storage classes"
		}
		fmt.Fprintf(stdout, "warning: %s is not on AWS (%s): the lifecycle rules move archives to %s most S3-compatible providers lack; if the store refuses them, run with --transition-days -1 (BUCKET_TRANSITION_DAYS=-1)\n",
			a, endpointHost(ep), classes)
	}
	if o.Retention.Set() {
		printRetentionPlan(stdout, o, sizeBytes)
	} else if sizeBytes > 0 {
		fmt.Fprintln(stdout, "--archive-size: the cost estimate is per RETENTION class, and RETENTION is not set")
	}
	setup := bucket.NewSetup(client, o)
	plan, err := setup.Plan(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: setup-bucket %s: %v\n", a, err)
		return ExitFailed
	}
	if len(plan.Actions) == 0 {
		fmt.Fprintf(stdout, "%s: no changes: the bucket is already set up\n", a)
		return ExitOK
	}
	fmt.Fprintf(stdout, "%s:\n%s", a, plan)
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was changed")
		return ExitOK
	}
	warnings, err := setup.Apply(ctx, plan)
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: setup-bucket %s: %v\n", a, err)
		return ExitFailed
	}
	fmt.Fprintln(stdout, "done; run it again any time: it changes only what differs")
	return ExitOK
}

// runPolicy is `pgoffsite policy`: the IAM policy for the credentials the dyno holds — write
// under the archive prefix, nothing else — or, with --reader, for the verifying credentials.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reader := fs.Bool("reader", false, "print the read-only policy for restores and verification instead")
	kmsKey := fs.String("kms-key-arn", "", "also allow encrypting with this KMS key (for S3_SSE=aws:kms)")
	conditional := fs.Bool("conditional-writes", true, "deny the uploader every write without If-None-Match (Amazon S3's s3:if-none-match condition key); =false for an S3-compatible store whose policies lack that key (MinIO refuses the policy with it)")
	dest := fs.String("destination", "", destinationUsage)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	// Only ARCHIVE_URL matters here: the policy is printed before the keys it is for exist.
	archives, err := config.ArchivesFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: the configuration has problems:\n%s\n", err)
		return ExitUsage
	}
	archive, err := pickS3Destination(config.Config{Archives: archives}, *dest)
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite policy: %v\n", err)
		return ExitUsage
	}
	var policy []byte
	if *reader {
		policy, err = bucket.ReaderPolicy(archive.Bucket, archive.Prefix)
	} else {
		policy, err = bucket.UploaderPolicyWith(archive.Bucket, archive.Prefix,
			bucket.UploaderOptions{KMSKeyARN: *kmsKey, NoConditionalWrites: !*conditional})
		if err == nil && !*conditional {
			fmt.Fprintln(stderr, "warning: without the conditional-write statement these keys can replace an archive with a plain PUT; the bucket's versions keep what it replaced, and pgoffsite status and verify (with the reader's keys) report it")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgoffsite: policy: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stdout, "%s\n", policy)
	return ExitOK
}

const destinationUsage = "the S3 destination to work on when ARCHIVE_URL names several: its number in ARCHIVE_URL (1 is the first) or its s3://bucket/prefix"

// printRetentionPlan says what RETENTION makes of the bucket's lifecycle, class by class, why
// each transition is where it is, and with --archive-size what it costs a month.
func printRetentionPlan(w io.Writer, o bucket.Options, archiveBytes int64) {
	plans := bucket.RetentionPlan(o.Retention, o.TransitionDays < 0)
	fmt.Fprintf(w, "retention plan (RETENTION=%q): archives are tagged retention=CLASS by the backup, one lifecycle rule per class:\n", o.Retention.String())
	for _, cp := range plans {
		fmt.Fprintf(w, "  %s\n", cp)
	}
	fmt.Fprintln(w, "  each move to a colder class happens only when the archive then stays there past the class's minimum storage duration, so expiry never costs an early-deletion fee")
	fmt.Fprintln(w, "  archives made before RETENTION carry no tag: no rule expires them any more; delete them by hand when they are no longer wanted")
	if archiveBytes > 0 {
		fmt.Fprint(w, bucket.FormatCost(bucket.EstimateCost(plans, archiveBytes), archiveBytes))
	}
}
