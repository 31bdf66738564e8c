package bucket

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
		ExpireDays: 400, NoncurrentDays: 30, AbortDays: 1}
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
