package bucket

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

func ruleIDs(rules []types.LifecycleRule) []string {
	var ids []string
	for _, r := range rules {
		ids = append(ids, aws.ToString(r.ID))
	}
	return ids
}

func TestOwnRules(t *testing.T) {
	o := Options{Bucket: "b", Prefix: "pg", Region: "us-east-1", DeepArchiveDays: 120, ExpireDays: 400}.withDefaults()
	rules := ownRules(o)
	if got := ruleIDs(rules); !slices.Equal(got, []string{RuleArchive, RuleDeepArchive}) {
		t.Fatalf("rules %q", got)
	}
	a := shapeOf(rules[0], false)
	want := ruleShape{Status: types.ExpirationStatusEnabled, Prefix: "pg/", Transitions: "30:GLACIER",
		ExpireDays: 400, NoncurrentDays: 400, AbortDays: 1}
	if a != want {
		t.Errorf("archive rule\n got %+v\nwant %+v", a, want)
	}
	if d := shapeOf(rules[1], false); d.Transitions != "120:DEEP_ARCHIVE" || d.Prefix != "pg/" || d.ExpireDays != 0 {
		t.Errorf("deep archive rule %+v", d)
	}
	// ExpireDays 0 keeps archives forever.
	never := ownRules(Options{Bucket: "b", Region: "us-east-1"}.withDefaults())
	if len(never) != 1 || never[0].Expiration != nil || aws.ToString(never[0].Filter.Prefix) != "" {
		t.Errorf("rules without expiry: %+v", never[0])
	}
}

// An archive overwritten with the uploader's keys survives as a noncurrent version: that version
// is kept at least as long as the archive would have been, so that an overwrite never shortens a
// retention. Archives kept for ever keep their replaced versions for ever.
func TestNoncurrentVersionsOutliveRetention(t *testing.T) {
	rule := func(o Options, id string) ruleShape {
		t.Helper()
		for _, r := range ownRules(o.withDefaults()) {
			if aws.ToString(r.ID) == id {
				return shapeOf(r, false)
			}
		}
		t.Fatalf("no rule %s", id)
		return ruleShape{}
	}
	base := Options{Bucket: "b", Prefix: "pg", Region: "us-east-1"}
	for _, tc := range []struct {
		expire, noncurrent, want int
	}{
		{400, 0, 400}, // BUCKET_NONCURRENT_EXPIRE_DAYS's default 30 is raised to the expiry
		{400, 500, 500},
		{0, 0, 0}, // never expire: no noncurrent expiry either
		{0, 30, 0},
	} {
		o := base
		o.ExpireDays, o.NoncurrentExpireDays = tc.expire, tc.noncurrent
		if got := rule(o, RuleArchive).NoncurrentDays; int(got) != tc.want {
			t.Errorf("expire %d, noncurrent %d: noncurrent versions kept %d days, want %d", tc.expire, tc.noncurrent, got, tc.want)
		}
	}
	if d := describeRules(Options{Bucket: "b", Region: "r", ExpireDays: 400}.withDefaults()); !strings.Contains(d, "remove replaced versions after 400 days") {
		t.Errorf("described as %q", d)
	}
	if d := describeRules(Options{Bucket: "b", Region: "r"}.withDefaults()); !strings.Contains(d, "keep replaced versions for ever") {
		t.Errorf("described as %q", d)
	}

	// RETENTION: each class's replaced versions as long as the class keeps archives (S3 applies
	// the earliest of the rules a version matches), the prefix-wide rule as long as the longest.
	pol, err := retention.Parse("daily=35d weekly=13w monthly=25m yearly=7y")
	if err != nil {
		t.Fatal(err)
	}
	o := base
	o.Retention = pol
	want := map[string]int32{RuleArchive: 2562, RetentionRulePrefix + "daily": 35, RetentionRulePrefix + "weekly": 91,
		RetentionRulePrefix + "monthly": 775, RetentionRulePrefix + "yearly": 2562}
	for id, days := range want {
		if r := rule(o, id); r.NoncurrentDays != days || (id != RuleArchive && r.ExpireDays != days) {
			t.Errorf("rule %s: expire %d, noncurrent %d, want %d both", id, r.ExpireDays, r.NoncurrentDays, days)
		}
	}
	short, _ := retention.Parse("daily=7d")
	o.Retention, o.NoncurrentExpireDays = short, 30
	if r := rule(o, RetentionRulePrefix+"daily"); r.NoncurrentDays != 30 {
		t.Errorf("daily=7d with BUCKET_NONCURRENT_EXPIRE_DAYS=30: replaced versions kept %d days, want 30", r.NoncurrentDays)
	}
	if d := describeRules(o.withDefaults()); !strings.Contains(d, "a version replaced by an overwrite, or expired, is kept as long as its class keeps archives") {
		t.Errorf("described as %q", d)
	}
}

func TestMergeRules(t *testing.T) {
	o := Options{Bucket: "b", Prefix: "pg", Region: "us-east-1", ExpireDays: 400}.withDefaults()
	want := ownRules(o)
	foreign := types.LifecycleRule{ID: aws.String("logs"), Status: types.ExpirationStatusEnabled,
		Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(7)}}
	stale := ownRules(Options{Bucket: "b", Prefix: "pg", Region: "us-east-1", ExpireDays: 200, DeepArchiveDays: 100}.withDefaults())
	// The same rule as a store may return it: legacy Prefix, no abort.
	stored := want[0]
	stored.Filter = nil
	stored.Prefix = aws.String("pg/")
	noAbort := stored
	noAbort.AbortIncompleteMultipartUpload = nil

	tests := []struct {
		name        string
		current     []types.LifecycleRule
		ignoreAbort bool
		wantIDs     []string
		wantChanged []string
	}{
		{"empty", nil, false, []string{RuleArchive}, []string{RuleArchive}},
		{"foreign kept", []types.LifecycleRule{foreign}, false, []string{"logs", RuleArchive}, []string{RuleArchive}},
		{"stale replaced, unwanted owned dropped", append([]types.LifecycleRule{foreign}, stale...), false,
			[]string{"logs", RuleArchive}, []string{RuleArchive, RuleDeepArchive}},
		{"same in another encoding", []types.LifecycleRule{stored, foreign}, false, []string{RuleArchive, "logs"}, nil},
		{"abort missing", []types.LifecycleRule{noAbort}, false, []string{RuleArchive}, []string{RuleArchive}},
		{"abort missing on a store that drops it", []types.LifecycleRule{noAbort}, true, []string{RuleArchive}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			merged, changed := mergeRules(tc.current, want, tc.ignoreAbort)
			if got := ruleIDs(merged); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("merged %q, want %q", got, tc.wantIDs)
			}
			if !slices.Equal(changed, tc.wantChanged) {
				t.Errorf("changed %q, want %q", changed, tc.wantChanged)
			}
			for _, r := range merged {
				if aws.ToString(r.ID) == "logs" && shapeOf(r, false) != shapeOf(foreign, false) {
					t.Errorf("foreign rule altered: %+v", r)
				}
			}
		})
	}
}

// A negative TransitionDays keeps archives in the standard class: stores without Glacier
// classes (MinIO without tiers, R2, B2) refuse transition rules.
func TestNoTransition(t *testing.T) {
	o := Options{Bucket: "acme-archive", Prefix: "pg", Region: "eu-west-1", TransitionDays: -1, ExpireDays: 400}.withDefaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	rules := ownRules(o)
	if len(rules) != 1 || len(rules[0].Transitions) != 0 || rules[0].Expiration == nil {
		t.Errorf("rules %+v", rules)
	}
	if d := describeRules(o); !strings.Contains(d, "stay in the standard storage class") {
		t.Errorf("description %q", d)
	}
}
