package bucket

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

var (
	azTarget  = AzureTarget{Location: "azblob://acct/backups/pg", Account: "acct", Container: "backups", Prefix: "pg"}
	gcsTarget = GCSTarget{Location: "gs://acme-archives/pg", Bucket: "acme-archives", Prefix: "pg"}
	heredoc   = regexp.MustCompile(`(?s)cat > pgoffsite-lifecycle\.json <<'EOF'\n(.*?)\nEOF\n`)
)

// printedDoc is the lifecycle document in a printed script, parsed into v.
func printedDoc(t *testing.T, script string, v any) {
	t.Helper()
	m := heredoc.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no lifecycle document in\n%s", script)
	}
	if err := json.Unmarshal([]byte(m[1]), v); err != nil {
		t.Fatalf("the printed document is not JSON: %v\n%s", err, m[1])
	}
}

// With RETENTION, the Azure policy setup-bucket prints has one rule per class, matching the
// blob index tag the uploader sets and the prefix, that deletes after the class's expiry and
// moves to the Azure tier of the class's S3 plan (same minimum duration) when the plan moves.
func TestAzureLifecycleFollowsTheRetentionPlan(t *testing.T) {
	p, err := retention.Parse("daily=7d weekly=9w monthly=4m yearly=7y")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := AzureSetup(&out, azTarget, Options{Retention: p}); err != nil {
		t.Fatal(err)
	}
	script := out.String()
	var doc AzurePolicy
	printedDoc(t, script, &doc)
	plans := RetentionPlan(p, false)
	if len(doc.Rules) != len(plans) {
		t.Fatalf("%d rules for %d classes:\n%s", len(doc.Rules), len(plans), script)
	}
	wantTier := map[retention.Class]string{retention.Weekly: "tierToCool", retention.Monthly: "tierToCold", retention.Yearly: "tierToArchive"}
	for i, cp := range plans {
		r := doc.Rules[i]
		f := r.Definition.Filters
		if r.Name != RetentionRulePrefix+string(cp.Class) || !r.Enabled || r.Type != "Lifecycle" ||
			len(f.PrefixMatch) != 1 || f.PrefixMatch[0] != "backups/pg/" ||
			len(f.BlobIndexMatch) != 1 || f.BlobIndexMatch[0] != (AzureTagEq{Name: retention.TagKey, Op: "==", Value: string(cp.Class)}) {
			t.Errorf("rule %d: %+v", i, r)
		}
		acts := r.Definition.Actions.BaseBlob
		if acts["delete"].DaysAfterCreationGreaterThan != cp.ExpireDays {
			t.Errorf("%s: deleted after %v, want %d days", cp.Class, acts["delete"], cp.ExpireDays)
		}
		want := 1
		if cp.Tier != "" {
			want = 2
			if acts[wantTier[cp.Class]].DaysAfterCreationGreaterThan != cp.TransitionDays {
				t.Errorf("%s: actions %v, want %s after %d days", cp.Class, acts, wantTier[cp.Class], cp.TransitionDays)
			}
		}
		if len(acts) != want {
			t.Errorf("%s: actions %v", cp.Class, acts)
		}
	}
	// The immutability steps: versioning, a policy no longer than the shortest class, its lock.
	for _, want := range []string{
		"az storage account management-policy create --account-name acct --resource-group RESOURCE_GROUP --policy @pgoffsite-lifecycle.json",
		"--enable-versioning true",
		"az storage container immutability-policy create --account-name acct --resource-group RESOURCE_GROUP --container-name backups --period 7\n",
		"az storage container immutability-policy lock",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %q:\n%s", want, script)
		}
	}
}

// Without RETENTION, the BUCKET_* settings the S3 rules use make one rule for the prefix.
func TestAzureLifecycleFromTheBucketSettings(t *testing.T) {
	p, err := AzureLifecycle(azTarget, Options{TransitionDays: 30, TransitionClass: ClassGlacier, DeepArchiveDays: 120, ExpireDays: 400, ObjectLockDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 1 || p.Rules[0].Name != RuleArchive || len(p.Rules[0].Definition.Filters.BlobIndexMatch) != 0 {
		t.Fatalf("rules %+v", p.Rules)
	}
	got := p.Rules[0].Definition.Actions.BaseBlob
	want := map[string]AzureAge{"tierToCold": {30}, "tierToArchive": {120}, "delete": {400}}
	if len(got) != len(want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("actions %v, want %v", got, want)
		}
	}
	if _, err := AzureLifecycle(azTarget, Options{ExpireDays: 20}); err == nil || !strings.Contains(err.Error(), "expire days 20") {
		t.Errorf("an expiry before the transition: %v", err)
	}
	var out strings.Builder
	if err := AzureSetup(&out, azTarget, Options{TransitionDays: -1}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "(no rule: archives stay in the Hot tier and never expire") || strings.Contains(s, "immutability-policy create") {
		t.Errorf("nothing to do, yet:\n%s", s)
	}
}

// Google's lifecycle cannot match a class: with RETENTION one rule deletes what is past its
// Custom-Time (each archive's expiry date), nothing is deleted by age, and every archive moves
// to NEARLINE only when no class would pay its early-deletion fee.
func TestGCSLifecycleWithRetention(t *testing.T) {
	for _, tc := range []struct {
		retention string
		nearline  bool
	}{
		{"daily=7d weekly=9w monthly=4m yearly=7y", true},
		{"daily=35d weekly=8w", false}, // 56 days: 26 in NEARLINE, under its 30
	} {
		p, err := retention.Parse(tc.retention)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := GCSSetup(&out, gcsTarget, Options{Retention: p, ExpireDays: 400}); err != nil {
			t.Fatal(err)
		}
		script := out.String()
		var doc GCSLifecycleDoc
		printedDoc(t, script, &doc)
		var deletes, moves []GCSRule
		for _, r := range doc.Rule {
			if len(r.Condition.MatchesPrefix) != 1 || r.Condition.MatchesPrefix[0] != "pg/" {
				t.Errorf("%s: a rule beyond the prefix: %+v", tc.retention, r)
			}
			switch r.Action.Type {
			case "Delete":
				deletes = append(deletes, r)
			case "SetStorageClass":
				moves = append(moves, r)
			}
		}
		if len(deletes) != 1 || deletes[0].Condition.Age != nil || deletes[0].Condition.DaysSinceCustomTime == nil || *deletes[0].Condition.DaysSinceCustomTime != 0 {
			t.Errorf("%s: deletes %+v, want one past the Custom-Time and none by age", tc.retention, deletes)
		}
		if got := len(moves) == 1 && moves[0].Action.StorageClass == "NEARLINE" && *moves[0].Condition.Age == 30; got != tc.nearline {
			t.Errorf("%s: moves %+v, want NEARLINE at 30 days: %v\n%s", tc.retention, moves, tc.nearline, script)
		}
		// The lock lasts as long as the shortest-kept class: the lifecycle's deletes are never refused.
		lock := fmt.Sprintf("gcloud storage buckets update gs://acme-archives --retention-period=%dd\n", RetentionPlan(p, true)[0].ExpireDays)
		for _, want := range []string{"cannot match an object's class", "Custom-Time",
			"gcloud storage buckets update gs://acme-archives --lifecycle-file=pgoffsite-lifecycle.json", lock, "--lock-retention-period"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s: the script lacks %q:\n%s", tc.retention, want, script)
			}
		}
	}
}

// Without RETENTION the BUCKET_* settings map to Google's classes; a move whose class's
// minimum (ARCHIVE: a year) outlasts the expiry is left out, and the script says why.
func TestGCSLifecycleFromTheBucketSettings(t *testing.T) {
	doc, notes, err := GCSLifecycle(gcsTarget, Options{TransitionDays: 30, TransitionClass: ClassGlacier, DeepArchiveDays: 120, ExpireDays: 400})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Rule) != 2 {
		t.Fatalf("rules %+v", doc.Rule)
	}
	m, d := doc.Rule[0], doc.Rule[1]
	if m.Action != (GCSAction{Type: "SetStorageClass", StorageClass: "COLDLINE"}) || *m.Condition.Age != 30 || m.Condition.MatchesStorageClass[0] != "STANDARD" {
		t.Errorf("move %+v", m)
	}
	if d.Action.Type != "Delete" || *d.Condition.Age != 400 {
		t.Errorf("delete %+v", d)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "no move to ARCHIVE after 120 days") {
		t.Errorf("notes %q", notes)
	}
}
