package bucket

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/units"
)

// RetentionRulePrefix begins the ID of each class's lifecycle rule: pgoffsite-retention-daily, ...
const RetentionRulePrefix = "pgoffsite-retention-"

// ClassStandardIA is the infrequent-access class weekly archives move to.
const ClassStandardIA = "STANDARD_IA"

// transitionAfterDays is when a class's archives leave STANDARD: after the month in which a
// restore of a recent archive is most likely, and the earliest S3 allows for STANDARD_IA.
const transitionAfterDays = 30

// classTier is where each retention class's archives go after transitionAfterDays: dailies are
// restored most often and expire soon, so they stay in STANDARD; weeklies go to STANDARD_IA,
// read in milliseconds; monthlies to GLACIER (hours to restore), yearlies to DEEP_ARCHIVE (up to
// two days), the cheapest, for what is kept for audits.
var classTier = map[retention.Class]string{
	retention.Weekly:  ClassStandardIA,
	retention.Monthly: ClassGlacier,
	retention.Yearly:  ClassDeepArchive,
}

// minDays is the minimum billed storage duration of a storage class: an archive deleted or moved
// earlier is billed as if it had stayed that long.
func minDays(class string) int {
	if class == ClassStandardIA {
		return 30
	}
	return minStorageDays[class]
}

// ClassPlan is what setup-bucket does with one retention class.
type ClassPlan struct {
	Class      retention.Class
	ExpireDays int
	// Tier is the storage class archives move to after TransitionDays; "" = they stay in STANDARD.
	Tier           string
	TransitionDays int
	// Why says why there is no transition, when there is none.
	Why string
}

// RetentionPlan is the plan for each class RETENTION lists, shortest first. A transition is made
// only when archives then stay in the tier for at least its minimum storage duration, so that
// expiry never costs an early-deletion fee; noTiers (a store without Glacier classes,
// BUCKET_TRANSITION_DAYS=-1) keeps everything in STANDARD.
func RetentionPlan(p retention.Policy, noTiers bool) []ClassPlan {
	var out []ClassPlan
	for _, c := range p.Listed() {
		k, _ := p.Keep(c)
		cp := ClassPlan{Class: c, ExpireDays: k.Days()}
		tier, ok := classTier[c]
		switch {
		case !ok:
			cp.Why = "restored most often and kept briefly"
		case noTiers:
			cp.Why = "transitions are off (BUCKET_TRANSITION_DAYS=-1)"
		case cp.ExpireDays-transitionAfterDays < minDays(tier):
			cp.Why = fmt.Sprintf("kept %d days: %s would bill at least %d days after the move at day %d, an early-deletion fee",
				cp.ExpireDays, tier, minDays(tier), transitionAfterDays)
		default:
			cp.Tier, cp.TransitionDays = tier, transitionAfterDays
		}
		out = append(out, cp)
	}
	return out
}

func (cp ClassPlan) String() string {
	s := fmt.Sprintf("%s: expire after %d days", cp.Class, cp.ExpireDays)
	if cp.Tier != "" {
		return s + fmt.Sprintf(", move to %s after %d days (%d days there, past its %d-day minimum: no early-deletion fee)",
			cp.Tier, cp.TransitionDays, cp.ExpireDays-cp.TransitionDays, minDays(cp.Tier))
	}
	return s + ", stay in STANDARD (" + cp.Why + ")"
}

// retentionRules are the lifecycle rules of RETENTION: one per class, matching the prefix and the
// tag retention=CLASS the job sets on each archive and its manifest.
func retentionRules(o Options) []types.LifecycleRule {
	var rules []types.LifecycleRule
	for _, cp := range RetentionPlan(o.Retention, o.TransitionDays < 0) {
		r := types.LifecycleRule{
			ID:     aws.String(RetentionRulePrefix + string(cp.Class)),
			Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{
				Prefix: aws.String(keyPrefix(o.Prefix)),
				Tags:   []types.Tag{{Key: aws.String(retention.TagKey), Value: aws.String(string(cp.Class))}},
			}},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(int32(cp.ExpireDays))},
			// A version of this class replaced by an overwrite is kept as long as the class keeps
			// archives; S3 applies the earliest expiry of the rules a version matches, so this
			// rule, not the prefix-wide one (the longest class), decides for the class's versions.
			NoncurrentVersionExpiration: &types.NoncurrentVersionExpiration{
				NoncurrentDays: aws.Int32(int32(noncurrentDays(o, cp.ExpireDays))),
			},
		}
		if cp.Tier != "" {
			r.Transitions = []types.Transition{{Days: aws.Int32(int32(cp.TransitionDays)), StorageClass: types.TransitionStorageClass(cp.Tier)}}
		}
		rules = append(rules, r)
	}
	return rules
}

// ownedRule tells the IDs of the rules setup maintains, wanted or not.
func ownedRule(id string) bool {
	return id == RuleArchive || id == RuleDeepArchive || strings.HasPrefix(id, RetentionRulePrefix)
}

// Prices are Amazon S3 list prices in us-east-1, in USD per GB-month (first 50 TB tier), as
// published on aws.amazon.com/s3/pricing (taken 2025-06-01). Estimates only: other regions, the
// request and retrieval fees, and the per-object overhead of the Glacier classes (40 KB each) are
// left out.
const PricesTaken = "2025-06-01"

var pricePerGBMonth = map[string]float64{
	"STANDARD":       0.023,
	ClassStandardIA:  0.0125,
	ClassGlacierIR:   0.004,
	ClassGlacier:     0.0036,
	ClassDeepArchive: 0.00099,
}

// ClassCost is the steady-state estimate of one class: how many archives it holds once the
// first expiries have happened, and what they cost a month.
type ClassCost struct {
	Plan     ClassPlan
	Archives float64
	USD      float64
}

// periodsPerDay is how often a class's period begins, per day.
var periodsPerDay = map[retention.Class]float64{
	retention.Daily:   1,
	retention.Weekly:  1.0 / 7,
	retention.Monthly: 12 / 365.25,
	retention.Yearly:  1 / 365.25,
}

// EstimateCost estimates the monthly storage cost of each class with one archive of
// archiveBytes a day: an archive belongs to the longest listed class whose period it begins, so
// a class holds its own periods less those of the longer classes.
func EstimateCost(plans []ClassPlan, archiveBytes int64) []ClassCost {
	gb := float64(archiveBytes) / 1e9
	var out []ClassCost
	for i, cp := range plans {
		rate := periodsPerDay[cp.Class]
		if i+1 < len(plans) {
			rate -= periodsPerDay[plans[i+1].Class]
		}
		n := rate * float64(cp.ExpireDays)
		// Time-weighted: the first TransitionDays in STANDARD, the rest in the tier.
		price := pricePerGBMonth["STANDARD"]
		if cp.Tier != "" {
			f := float64(cp.TransitionDays) / float64(cp.ExpireDays)
			price = f*price + (1-f)*pricePerGBMonth[cp.Tier]
		}
		out = append(out, ClassCost{Plan: cp, Archives: n, USD: n * gb * price})
	}
	return out
}

// FormatCost lists the estimate for people, a line per class and the total.
func FormatCost(costs []ClassCost, archiveBytes int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "monthly storage estimate for one %s archive a day (Amazon S3 list prices, us-east-1, taken %s; requests and retrievals not included):\n",
		units.IEC(archiveBytes), PricesTaken)
	total := 0.0
	for _, c := range costs {
		where := "STANDARD"
		if c.Plan.Tier != "" {
			where = "STANDARD, then " + c.Plan.Tier
		}
		fmt.Fprintf(&b, "  %-8s about %4.0f archives in %s: $%.2f a month\n", c.Plan.Class, math.Round(c.Archives), where, c.USD)
		total += c.USD
	}
	fmt.Fprintf(&b, "  total    $%.2f a month\n", total)
	return b.String()
}

// ErrRulesUnreadable reports that the keys may not read the bucket's lifecycle rules (the
// uploader's write-only keys never can).
var ErrRulesUnreadable = errors.New("the lifecycle rules cannot be read with these keys")

// RetentionDrift compares the bucket's lifecycle rules with those setup-bucket writes for
// RETENTION (o.Prefix, o.Retention, o.TransitionDays < 0 for no tiers): it returns the IDs of the rules that are
// missing, differ or are no longer wanted, none when the bucket matches. It changes nothing.
func RetentionDrift(ctx context.Context, client lifecycleAPI, o Options) ([]string, error) {
	o = o.withDefaults()
	lc, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(o.Bucket)})
	var current []types.LifecycleRule
	switch {
	case err == nil:
		current = lc.Rules
	case s3err.Code(err) == "NoSuchLifecycleConfiguration":
	case s3err.Of(err) == s3err.Denied || s3err.Of(err) == s3err.BadCredentials:
		return nil, ErrRulesUnreadable
	default:
		return nil, fmt.Errorf("bucket: %s: read lifecycle configuration: %w", o.Bucket, err)
	}
	// The prefix-wide rule counts too: one still expiring everything after BUCKET_EXPIRE_DAYS
	// would cut every longer class short. Rules of others are not compared.
	var owned []types.LifecycleRule
	for _, r := range current {
		if ownedRule(aws.ToString(r.ID)) {
			owned = append(owned, r)
		}
	}
	// Compared as if AbortIncompleteMultipartUpload were absent: MinIO drops it.
	_, changed := mergeRules(owned, ownRules(o), true)
	return changed, nil
}
