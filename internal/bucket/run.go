package bucket

import (
	"context"
	"fmt"
	"io"
)

// RunOptions say how Run works on a bucket and how it names it.
type RunOptions struct {
	// Name is how the bucket is named to people: its destination, s3://bucket/prefix.
	Name string
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// ArchiveBytes, when known, is the size of one archive: each retention class's monthly cost
	// is estimated from it.
	ArchiveBytes int64
	// OffAWSHost is the endpoint's host when the store is not Amazon S3, "" when it is: the
	// storage classes of the lifecycle rules are then Amazon's, which most other stores lack.
	OffAWSHost string
}

// Run sets up one bucket as o describes and says on w what it finds and does: a warning when the
// lifecycle rules name storage classes the store may lack, RETENTION's plan, then the changes,
// made unless r.DryRun. It is idempotent: a second run changes only what still differs.
func Run(ctx context.Context, w io.Writer, client S3API, o Options, r RunOptions) error {
	if r.OffAWSHost != "" && o.TransitionDays >= 0 {
		// Not refused: a store may have tiers by those names (MinIO can), but most have none.
		classes := o.TransitionClass + ", an Amazon S3 storage class"
		if o.Retention.Set() {
			classes = "STANDARD_IA, GLACIER and DEEP_ARCHIVE (by retention class), Amazon S3 storage classes"
		}
		fmt.Fprintf(w, "warning: %s is not on AWS (%s): the lifecycle rules move archives to %s most S3-compatible providers lack; if the store refuses them, run with --transition-days -1 (BUCKET_TRANSITION_DAYS=-1)\n",
			r.Name, r.OffAWSHost, classes)
	}
	if o.Retention.Set() {
		writeRetentionPlan(w, o, r.ArchiveBytes)
	} else if r.ArchiveBytes > 0 {
		fmt.Fprintln(w, "--archive-size: the cost estimate is per RETENTION class, and RETENTION is not set")
	}
	setup := NewSetup(client, o)
	plan, err := setup.Plan(ctx)
	if err != nil {
		return err
	}
	if len(plan.Actions) == 0 {
		fmt.Fprintf(w, "%s: no changes: the bucket is already set up\n", r.Name)
		return nil
	}
	fmt.Fprintf(w, "%s:\n%s", r.Name, plan)
	if r.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
		return nil
	}
	warnings, err := setup.Apply(ctx, plan)
	for _, warning := range warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "done; run it again any time: it changes only what differs")
	return nil
}

// writeRetentionPlan says what RETENTION makes of the bucket's lifecycle, class by class, why
// each transition is where it is, and with the archive's size what it costs a month.
func writeRetentionPlan(w io.Writer, o Options, archiveBytes int64) {
	plans := RetentionPlan(o.Retention, o.TransitionDays < 0)
	fmt.Fprintf(w, "retention plan (RETENTION=%q): archives are tagged retention=CLASS by the backup, one lifecycle rule per class:\n", o.Retention.String())
	for _, cp := range plans {
		fmt.Fprintf(w, "  %s\n", cp)
	}
	fmt.Fprintln(w, "  each move to a colder class happens only when the archive then stays there past the class's minimum storage duration, so expiry never costs an early-deletion fee")
	fmt.Fprintln(w, "  archives made before RETENTION carry no tag: no rule expires them any more; delete them by hand when they are no longer wanted")
	if archiveBytes > 0 {
		fmt.Fprint(w, FormatCost(EstimateCost(plans, archiveBytes), archiveBytes))
	}
}
