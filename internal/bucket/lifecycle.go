package bucket

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// IDs of the lifecycle rules setup owns. Rules with other IDs are never
// touched.
const (
	RuleArchive     = "pgoffsite-archive"
	RuleDeepArchive = "pgoffsite-deep-archive"
)

// abortIncompleteDays: a multipart upload still open a day later belongs to
// a job that died; its parts are billed until aborted.
const abortIncompleteDays = 1

// ownRules are the lifecycle rules setup maintains. The second transition is
// a rule of its own because some S3 stores (MinIO) allow one transition per
// rule; Amazon S3 applies overlapping rules together.
//
// With RETENTION, each class has its own rule (prefix and tag), and the prefix-wide rule keeps
// only the noncurrent-version and unfinished-upload cleanup: S3 applies the earliest expiry of
// all the rules an object matches, so a prefix-wide expiry would cut every class short.
// Archives made before RETENTION carry no tag, so no rule expires them any more: they are kept
// until deleted by hand (setup-bucket says so).
func ownRules(o Options) []types.LifecycleRule {
	filter := &types.LifecycleRuleFilter{Prefix: aws.String(keyPrefix(o.Prefix))}
	// Old versions and the parts of interrupted uploads are cleaned up under the whole prefix,
	// with or without RETENTION.
	archive := types.LifecycleRule{
		ID:     aws.String(RuleArchive),
		Status: types.ExpirationStatusEnabled,
		Filter: filter,
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: aws.Int32(abortIncompleteDays),
		},
	}
	if days := noncurrentDays(o, o.longestKept()); days > 0 {
		archive.NoncurrentVersionExpiration = &types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(int32(days))}
	}
	if o.Retention.Set() {
		return append([]types.LifecycleRule{archive}, retentionRules(o)...)
	}
	if o.TransitionDays > 0 {
		archive.Transitions = []types.Transition{{
			Days:         aws.Int32(int32(o.TransitionDays)),
			StorageClass: types.TransitionStorageClass(o.TransitionClass),
		}}
	}
	if o.ExpireDays > 0 {
		archive.Expiration = &types.LifecycleExpiration{Days: aws.Int32(int32(o.ExpireDays))}
	}
	rules := []types.LifecycleRule{archive}
	if o.DeepArchiveDays > 0 {
		rules = append(rules, types.LifecycleRule{
			ID:     aws.String(RuleDeepArchive),
			Status: types.ExpirationStatusEnabled,
			Filter: filter,
			Transitions: []types.Transition{{
				Days:         aws.Int32(int32(o.DeepArchiveDays)),
				StorageClass: types.TransitionStorageClassDeepArchive,
			}},
		})
	}
	return rules
}

// An archive overwritten with the uploader's keys (where the store cannot refuse a write without
// If-None-Match) stays in a versioned bucket as a noncurrent version, and the noncurrent expiry
// is then all that is left of its retention: it must be no shorter than the retention itself, or
// an overwrite becomes a way to delete. The price is that an archive that expires is also kept
// that long again as a noncurrent version.

// longestKept is the longest time the rules keep an archive, in days; 0 = for ever.
func (o Options) longestKept() int {
	if !o.Retention.Set() {
		return o.ExpireDays
	}
	longest := 0
	for _, cp := range RetentionPlan(o.Retention, o.TransitionDays < 0) {
		longest = max(longest, cp.ExpireDays)
	}
	return longest
}

// noncurrentDays is how long the versions replaced of archives kept keep days are kept: at least
// NoncurrentExpireDays, at least keep; 0 = for ever, for archives that never expire.
func noncurrentDays(o Options, keep int) int {
	if keep == 0 {
		return 0
	}
	return max(o.NoncurrentExpireDays, keep)
}

func describeNoncurrent(days int) string {
	if days == 0 {
		return "keep replaced versions for ever, as the archives"
	}
	return fmt.Sprintf("remove replaced versions after %d days (no sooner than the archives expire, so that an overwritten archive stays restorable as long; an expired archive, too, is kept that long again as a replaced version)", days)
}

// describeRules says in words what the rules do.
func describeRules(o Options) string {
	var b strings.Builder
	prefix := keyPrefix(o.Prefix)
	if o.Retention.Set() {
		fmt.Fprintf(&b, "on prefix %q, by the tag retention=CLASS (RETENTION=%q): ", prefix, o.Retention.String())
		var parts []string
		for _, cp := range RetentionPlan(o.Retention, o.TransitionDays < 0) {
			parts = append(parts, cp.String())
		}
		b.WriteString(strings.Join(parts, "; "))
		fmt.Fprintf(&b, "; untagged archives (made before RETENTION) no longer expire; a version replaced by an overwrite, or expired, is kept as long as its class keeps archives, at least %d days (untagged: %d days); abort unfinished uploads after %d day",
			o.NoncurrentExpireDays, noncurrentDays(o, o.longestKept()), abortIncompleteDays)
		return b.String()
	}
	if prefix == "" {
		b.WriteString("on the whole bucket: ")
	} else {
		fmt.Fprintf(&b, "on prefix %q: ", prefix)
	}
	if o.TransitionDays > 0 {
		fmt.Fprintf(&b, "move to %s after %d days", o.TransitionClass, o.TransitionDays)
	} else {
		b.WriteString("stay in the standard storage class")
	}
	if o.DeepArchiveDays > 0 {
		fmt.Fprintf(&b, ", to %s after %d days", ClassDeepArchive, o.DeepArchiveDays)
	}
	if o.ExpireDays > 0 {
		fmt.Fprintf(&b, ", expire after %d days", o.ExpireDays)
	} else {
		b.WriteString(", never expire")
	}
	fmt.Fprintf(&b, ", %s, abort unfinished uploads after %d day", describeNoncurrent(noncurrentDays(o, o.longestKept())), abortIncompleteDays)
	return b.String()
}

// mergeRules puts want into current by rule ID, dropping owned rules no
// longer wanted. changed lists the IDs added, replaced or removed; when
// empty, the configuration needs no change. ignoreAbort compares rules as if
// AbortIncompleteMultipartUpload were absent, for stores known to drop it.
func mergeRules(current, want []types.LifecycleRule, ignoreAbort bool) (merged []types.LifecycleRule, changed []string) {
	wantByID := map[string]types.LifecycleRule{}
	for _, r := range want {
		wantByID[aws.ToString(r.ID)] = r
	}
	seen := map[string]bool{}
	for _, r := range current {
		id := aws.ToString(r.ID)
		w, ours := wantByID[id]
		switch {
		case ours:
			seen[id] = true
			if sameRule(r, w, ignoreAbort) {
				merged = append(merged, r)
			} else {
				merged = append(merged, w)
				changed = append(changed, id)
			}
		case ownedRule(id):
			changed = append(changed, id) // owned but no longer wanted: drop
		default:
			merged = append(merged, r)
		}
	}
	for _, w := range want {
		if id := aws.ToString(w.ID); !seen[id] {
			merged = append(merged, w)
			changed = append(changed, id)
		}
	}
	return merged, changed
}

// ruleShape is what a lifecycle rule does, in a form that compares equal
// however a store chose to encode it.
type ruleShape struct {
	Status          types.ExpirationStatus
	Prefix          string
	Tags            string // key=value,... sorted
	OtherFilter     bool   // sizes: never in our rules
	Transitions     string
	ExpireDays      int32
	ExpireDate      string
	ExpireMarkers   bool
	NoncurrentDays  int32
	NewerNoncurrent int32
	NoncurrentMoves int
	AbortDays       int32
}

func shapeOf(r types.LifecycleRule, ignoreAbort bool) ruleShape {
	s := ruleShape{Status: r.Status, Prefix: aws.ToString(r.Prefix)}
	if f := r.Filter; f != nil {
		if f.Prefix != nil {
			s.Prefix = *f.Prefix
		}
		var tags []string
		if f.Tag != nil {
			tags = append(tags, aws.ToString(f.Tag.Key)+"="+aws.ToString(f.Tag.Value))
		}
		if a := f.And; a != nil {
			if a.Prefix != nil {
				s.Prefix = *a.Prefix
			}
			for _, t := range a.Tags {
				tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
			}
			s.OtherFilter = a.ObjectSizeGreaterThan != nil || a.ObjectSizeLessThan != nil
		}
		sort.Strings(tags)
		s.Tags = strings.Join(tags, ",")
		s.OtherFilter = s.OtherFilter || f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil
	}
	var ts []string
	for _, t := range r.Transitions {
		at := fmt.Sprint(aws.ToInt32(t.Days))
		if t.Date != nil {
			at = t.Date.UTC().Format("2006-01-02")
		}
		ts = append(ts, at+":"+string(t.StorageClass))
	}
	sort.Strings(ts)
	s.Transitions = strings.Join(ts, ",")
	if e := r.Expiration; e != nil {
		s.ExpireDays = aws.ToInt32(e.Days)
		if e.Date != nil {
			s.ExpireDate = e.Date.UTC().Format("2006-01-02")
		}
		s.ExpireMarkers = aws.ToBool(e.ExpiredObjectDeleteMarker)
	}
	if n := r.NoncurrentVersionExpiration; n != nil {
		s.NoncurrentDays = aws.ToInt32(n.NoncurrentDays)
		s.NewerNoncurrent = aws.ToInt32(n.NewerNoncurrentVersions)
	}
	s.NoncurrentMoves = len(r.NoncurrentVersionTransitions)
	if a := r.AbortIncompleteMultipartUpload; a != nil && !ignoreAbort {
		s.AbortDays = aws.ToInt32(a.DaysAfterInitiation)
	}
	return s
}

func sameRule(a, b types.LifecycleRule, ignoreAbort bool) bool {
	return reflect.DeepEqual(shapeOf(a, ignoreAbort), shapeOf(b, ignoreAbort))
}
