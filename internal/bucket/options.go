package bucket

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3name"
)

// Encryption algorithms accepted in Options.SSE.
const (
	SSES3  = "AES256"
	SSEKMS = "aws:kms"
)

// Storage classes accepted in Options.TransitionClass.
const (
	ClassGlacier     = "GLACIER"
	ClassGlacierIR   = "GLACIER_IR"
	ClassDeepArchive = "DEEP_ARCHIVE"
)

// Object Lock modes accepted in Options.ObjectLockMode.
const (
	LockGovernance = "GOVERNANCE"
	LockCompliance = "COMPLIANCE"
)

// Defaults applied when the corresponding Options field is zero.
const (
	DefaultTransitionDays       = 30
	DefaultTransitionClass      = ClassGlacier
	DefaultNoncurrentExpireDays = 30
	DefaultObjectLockMode       = LockGovernance
)

// DefaultExpireDays is the expiry the command line offers by default. It is
// not applied to a zero Options.ExpireDays, which means "never expire": a zero
// value must never delete data.
//
// 400 days keeps every daily archive for thirteen months, so the state of any
// day in the past year can be restored (year-end and audit comparisons need a
// year plus a margin), and it is past the minimum storage duration of
// GLACIER/GLACIER_IR (90 days) and DEEP_ARCHIVE (180 days), so expiry never
// incurs early-deletion charges.
const DefaultExpireDays = 400

// minStorageDays is the minimum billed storage duration per class: deleting
// earlier is charged as if stored that long.
var minStorageDays = map[string]int{
	ClassGlacierIR:   90,
	ClassGlacier:     90,
	ClassDeepArchive: 180,
}

// Options says what a safe archive bucket looks like.
type Options struct {
	Bucket string
	// Prefix is the key prefix the archives are written under ("" = whole
	// bucket). Leading and trailing slashes are ignored.
	Prefix string
	// Region the bucket must be in (and is created in).
	Region string

	// SSE is the default encryption: SSES3 or SSEKMS. Empty means SSE-S3,
	// except that an existing SSE-KMS default is kept rather than weakened.
	SSE string
	// KMSKeyID is the KMS key (ID, ARN or alias) for SSEKMS; empty uses the
	// AWS-managed aws/s3 key.
	KMSKeyID string

	// TransitionDays (default 30) after creation, archives move to TransitionClass (default
	// GLACIER); a negative value means never (S3-compatible stores without Glacier classes).
	TransitionDays  int
	TransitionClass string
	// DeepArchiveDays, if not 0, moves archives on to DEEP_ARCHIVE that many
	// days after creation.
	DeepArchiveDays int
	// ExpireDays after creation archives expire; 0 = never (see
	// DefaultExpireDays for the recommended value).
	ExpireDays int
	// NoncurrentExpireDays (default 30) after a version stops being current
	// (overwritten, deleted or expired) it is removed for good — never sooner
	// than its archive would have expired (see NoncurrentDays): an overwrite
	// must not shorten an archive's retention.
	NoncurrentExpireDays int

	// ObjectLockDays, if not 0, sets a default retention of that many days
	// in ObjectLockMode (default GOVERNANCE). Needs a bucket created with
	// Object Lock: a missing bucket is created so.
	ObjectLockDays int
	ObjectLockMode string

	// Retention (RETENTION), when set, replaces the expiry and transitions above by one rule per
	// class, matching the tag retention=CLASS (see RetentionPlan).
	Retention retention.Policy
}

// withDefaults returns o normalised, with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.TransitionDays == 0 {
		o.TransitionDays = DefaultTransitionDays
	}
	if o.TransitionClass == "" {
		o.TransitionClass = DefaultTransitionClass
	}
	if o.NoncurrentExpireDays == 0 {
		o.NoncurrentExpireDays = DefaultNoncurrentExpireDays
	}
	if o.ObjectLockDays > 0 && o.ObjectLockMode == "" {
		o.ObjectLockMode = DefaultObjectLockMode
	}
	return o
}

// validate reports every problem at once; o must have had withDefaults.
func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := validBucketName(o.Bucket); err != nil {
		errs = append(errs, err)
	}
	if err := validPrefix(o.Prefix); err != nil {
		errs = append(errs, err)
	}
	if o.Region == "" {
		bad("region is empty: the bucket's region must be given")
	}
	switch o.SSE {
	case "", SSES3:
		if o.KMSKeyID != "" {
			bad("KMS key %q given but encryption is %s: set encryption to %s or drop the key", o.KMSKeyID, SSES3, SSEKMS)
		}
	case SSEKMS:
	default:
		bad("encryption %q: want %s or %s", o.SSE, SSES3, SSEKMS)
	}

	errs = append(errs, o.lifecycleProblems()...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("bucket: invalid options: %w", errors.Join(errs...))
}

// lifecycleProblems are the mistakes in the transitions, expiry and retention lock, every
// provider's; o must have had withDefaults.
func (o Options) lifecycleProblems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	last := max(o.TransitionDays, 0) // negative: no transition (stores without Glacier classes)
	if _, ok := minStorageDays[o.TransitionClass]; !ok {
		bad("transition storage class %q: want %s, %s or %s", o.TransitionClass, ClassGlacier, ClassGlacierIR, ClassDeepArchive)
	}
	if o.DeepArchiveDays != 0 {
		switch {
		case o.TransitionClass == ClassDeepArchive:
			bad("deep archive days %d: archives already go to %s after %d days; drop one of the two", o.DeepArchiveDays, ClassDeepArchive, o.TransitionDays)
		case o.DeepArchiveDays <= o.TransitionDays:
			bad("deep archive days %d: must be later than the first transition (%d days)", o.DeepArchiveDays, o.TransitionDays)
		}
		last = o.DeepArchiveDays
	}
	if o.ExpireDays < 0 {
		bad("expire days %d: must be positive, or 0 to keep archives forever", o.ExpireDays)
	} else if o.ExpireDays != 0 && o.ExpireDays <= last {
		bad("expire days %d: must be later than the last transition (%d days), or 0 to keep archives forever", o.ExpireDays, last)
	}
	if o.NoncurrentExpireDays < 0 {
		bad("noncurrent version expire days %d: must be positive", o.NoncurrentExpireDays)
	}
	if o.ObjectLockDays < 0 {
		bad("object lock days %d: must be positive, or 0 for no default retention", o.ObjectLockDays)
	}
	switch o.ObjectLockMode {
	case "":
	case LockGovernance, LockCompliance:
		if o.ObjectLockDays == 0 {
			bad("object lock mode %s given without object lock days", o.ObjectLockMode)
		}
	default:
		bad("object lock mode %q: want %s or %s", o.ObjectLockMode, LockGovernance, LockCompliance)
	}
	return errs
}

func validBucketName(name string) error {
	switch {
	case name == "":
		return errors.New("bucket name is empty")
	}
	if why := s3name.BucketProblem(name); why != "" {
		return fmt.Errorf("bucket name %q is not a valid S3 bucket name: %s", name, why)
	}
	return nil
}

// validPrefix rejects what would change the meaning of a policy ARN or
// lifecycle filter built from the prefix.
func validPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "*?") || strings.Contains(prefix, "${") {
		return fmt.Errorf("prefix %q: must not contain *, ? or ${ (they are wildcards and variables in IAM policies)", prefix)
	}
	if strings.Contains(prefix, "//") {
		return fmt.Errorf("prefix %q: must not contain an empty path segment", prefix)
	}
	return nil
}

// keyPrefix is the prefix of every archive key: "" or "dir/".
func keyPrefix(prefix string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}
