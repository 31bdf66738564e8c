package bucket

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// setup-bucket for Azure Blob Storage and Google Cloud Storage: pgoffsite holds no
// administrator's credentials for them, so it prints what to apply — the lifecycle document and
// the retention-lock commands — from the same Options and RETENTION plan as an S3 bucket's
// rules. The tiers map to the provider's class with the same minimum billed duration, so the
// plan's no-early-deletion-fee rule holds there too.

// azureTier is the lifecycle action moving a blob to the Azure tier of each S3 class: Cool
// (30 days minimum, like STANDARD_IA), Cold (90, like GLACIER and GLACIER_IR, but online) and
// Archive (180 days, offline for hours, like DEEP_ARCHIVE).
var azureTier = map[string]string{
	ClassStandardIA:  "tierToCool",
	ClassGlacierIR:   "tierToCold",
	ClassGlacier:     "tierToCold",
	ClassDeepArchive: "tierToArchive",
}

// gcsClass is the Google storage class of each S3 class, and gcsMinDays its minimum billed
// duration (ARCHIVE's is a year, longer than DEEP_ARCHIVE's).
var (
	gcsClass = map[string]string{
		ClassStandardIA:  "NEARLINE",
		ClassGlacierIR:   "COLDLINE",
		ClassGlacier:     "COLDLINE",
		ClassDeepArchive: "ARCHIVE",
	}
	gcsMinDays = map[string]int{"NEARLINE": 30, "COLDLINE": 90, "ARCHIVE": 365}
)

// RuleArchive's counterpart on Azure and Google carries the same name.
const cloudRuleArchive = RuleArchive

// AzureTarget is an Azure Blob container setup-bucket prints for.
type AzureTarget struct {
	Location           string // azblob://ACCOUNT/CONTAINER/prefix
	Account, Container string
	Prefix             string
}

// GCSTarget is a Google Cloud Storage bucket setup-bucket prints for.
type GCSTarget struct {
	Location string // gs://BUCKET/prefix
	Bucket   string
	Prefix   string
}

// Azure's lifecycle-management policy document (az storage account management-policy).
type (
	AzurePolicy struct {
		Rules []AzureRule `json:"rules"`
	}
	AzureRule struct {
		Enabled    bool          `json:"enabled"`
		Name       string        `json:"name"`
		Type       string        `json:"type"`
		Definition AzureRuleBody `json:"definition"`
	}
	AzureRuleBody struct {
		Filters AzureFilters `json:"filters"`
		Actions AzureActions `json:"actions"`
	}
	AzureFilters struct {
		BlobTypes      []string     `json:"blobTypes"`
		PrefixMatch    []string     `json:"prefixMatch"`
		BlobIndexMatch []AzureTagEq `json:"blobIndexMatch,omitempty"`
	}
	AzureTagEq struct {
		Name  string `json:"name"`
		Op    string `json:"op"`
		Value string `json:"value"`
	}
	AzureActions struct {
		// BaseBlob maps an action (tierToCool, tierToCold, tierToArchive, delete) to its age.
		BaseBlob map[string]AzureAge `json:"baseBlob"`
	}
	AzureAge struct {
		DaysAfterCreationGreaterThan int `json:"daysAfterCreationGreaterThan"`
	}
)

// AzureLifecycle is the lifecycle-management policy of o for the container's prefix: with
// RETENTION one rule per class, matching the blob index tag retention=CLASS every archive and
// manifest is written with; without it one rule for everything under the prefix.
func AzureLifecycle(t AzureTarget, o Options) (AzurePolicy, error) {
	o = o.withDefaults()
	if err := cloudProblems(o); err != nil {
		return AzurePolicy{}, err
	}
	prefix := t.Container + "/" + keyPrefix(t.Prefix)
	rule := func(name string, class retention.Class, actions map[string]AzureAge) AzureRule {
		r := AzureRule{Enabled: true, Name: name, Type: "Lifecycle", Definition: AzureRuleBody{
			Filters: AzureFilters{BlobTypes: []string{"blockBlob"}, PrefixMatch: []string{prefix}},
			Actions: AzureActions{BaseBlob: actions},
		}}
		if class != "" {
			r.Definition.Filters.BlobIndexMatch = []AzureTagEq{{Name: retention.TagKey, Op: "==", Value: string(class)}}
		}
		return r
	}
	p := AzurePolicy{Rules: []AzureRule{}}
	if o.Retention.Set() {
		for _, cp := range RetentionPlan(o.Retention, o.TransitionDays < 0) {
			actions := map[string]AzureAge{"delete": {cp.ExpireDays}}
			if cp.Tier != "" {
				actions[azureTier[cp.Tier]] = AzureAge{cp.TransitionDays}
			}
			p.Rules = append(p.Rules, rule(RetentionRulePrefix+string(cp.Class), cp.Class, actions))
		}
		return p, nil
	}
	actions := map[string]AzureAge{}
	if o.TransitionDays >= 0 {
		actions[azureTier[o.TransitionClass]] = AzureAge{o.TransitionDays}
	}
	if o.DeepArchiveDays > 0 {
		actions[azureTier[ClassDeepArchive]] = AzureAge{o.DeepArchiveDays}
	}
	if o.ExpireDays > 0 {
		actions["delete"] = AzureAge{o.ExpireDays}
	}
	if len(actions) > 0 {
		p.Rules = append(p.Rules, rule(cloudRuleArchive, "", actions))
	}
	return p, nil
}

// Google's lifecycle document (gcloud storage buckets update --lifecycle-file).
type (
	GCSLifecycleDoc struct {
		Rule []GCSRule `json:"rule"`
	}
	GCSRule struct {
		Action    GCSAction    `json:"action"`
		Condition GCSCondition `json:"condition"`
	}
	GCSAction struct {
		Type         string `json:"type"` // Delete or SetStorageClass
		StorageClass string `json:"storageClass,omitempty"`
	}
	GCSCondition struct {
		Age                 *int     `json:"age,omitempty"`
		DaysSinceCustomTime *int     `json:"daysSinceCustomTime,omitempty"`
		MatchesPrefix       []string `json:"matchesPrefix,omitempty"`
		MatchesStorageClass []string `json:"matchesStorageClass,omitempty"`
	}
)

// GCSLifecycle is the lifecycle of o for the bucket's prefix, and the notes on what Google's
// lifecycle cannot do. Its conditions cannot match an object's metadata, so a class cannot be
// matched: with RETENTION each archive carries its expiry date as its Custom-Time (set at upload,
// which the uploader may do and never change), one rule deletes what is past it, and the
// storage-class moves are one for all classes, made only where no class's archives would pay
// an early-deletion fee.
func GCSLifecycle(t GCSTarget, o Options) (GCSLifecycleDoc, []string, error) {
	o = o.withDefaults()
	if err := cloudProblems(o); err != nil {
		return GCSLifecycleDoc{}, nil, err
	}
	var match []string
	if kp := keyPrefix(t.Prefix); kp != "" {
		match = []string{kp}
	}
	doc := GCSLifecycleDoc{Rule: []GCSRule{}}
	var notes []string
	move := func(days int, class string, from []string) {
		doc.Rule = append(doc.Rule, GCSRule{Action: GCSAction{Type: "SetStorageClass", StorageClass: class},
			Condition: GCSCondition{Age: &days, MatchesPrefix: match, MatchesStorageClass: from}})
	}
	if o.Retention.Set() {
		zero := 0
		doc.Rule = append(doc.Rule, GCSRule{Action: GCSAction{Type: "Delete"},
			Condition: GCSCondition{DaysSinceCustomTime: &zero, MatchesPrefix: match}})
		notes = append(notes, "Google's lifecycle cannot match an object's class (no condition reads metadata, and the class is not in the name): each archive and manifest carries its expiry date as its Custom-Time, set at upload from RETENTION, and the rule deletes what is past it",
			"the storage-class moves of S3 (weekly to STANDARD_IA, monthly to GLACIER, yearly to DEEP_ARCHIVE) cannot be made per class here")
		plans := RetentionPlan(o.Retention, o.TransitionDays < 0)
		switch ok, why := nearlineForAll(plans); {
		case o.TransitionDays < 0:
			notes = append(notes, "no storage-class move: transitions are off (BUCKET_TRANSITION_DAYS=-1)")
		case ok:
			move(transitionAfterDays, "NEARLINE", []string{"STANDARD"})
			notes = append(notes, fmt.Sprintf("every archive moves to NEARLINE after %d days: each class keeps its archives at least %d days more, NEARLINE's minimum", transitionAfterDays, gcsMinDays["NEARLINE"]))
		default:
			notes = append(notes, "no storage-class move: "+why)
		}
		return doc, notes, nil
	}
	lastClass := "STANDARD"
	step := func(days int, s3class string) {
		class := gcsClass[s3class]
		if o.ExpireDays > 0 && o.ExpireDays-days < gcsMinDays[class] {
			notes = append(notes, fmt.Sprintf("no move to %s after %d days: archives expire %d days later, before its %d-day minimum (an early-deletion fee)",
				class, days, o.ExpireDays-days, gcsMinDays[class]))
			return
		}
		move(days, class, []string{lastClass})
		lastClass = class
	}
	if o.TransitionDays >= 0 {
		step(o.TransitionDays, o.TransitionClass)
	}
	if o.DeepArchiveDays > 0 {
		step(o.DeepArchiveDays, ClassDeepArchive)
	}
	if o.ExpireDays > 0 {
		days := o.ExpireDays
		doc.Rule = append(doc.Rule, GCSRule{Action: GCSAction{Type: "Delete"}, Condition: GCSCondition{Age: &days, MatchesPrefix: match}})
	}
	return doc, notes, nil
}

// nearlineForAll says whether moving every archive to NEARLINE after transitionAfterDays costs
// no class an early-deletion fee.
func nearlineForAll(plans []ClassPlan) (bool, string) {
	for _, cp := range plans {
		if cp.ExpireDays > transitionAfterDays && cp.ExpireDays-transitionAfterDays < gcsMinDays["NEARLINE"] {
			return false, fmt.Sprintf("%s archives are kept %d days, and NEARLINE bills at least %d days after a move at day %d",
				cp.Class, cp.ExpireDays, gcsMinDays["NEARLINE"], transitionAfterDays)
		}
	}
	return true, ""
}

// cloudProblems are the mistakes in o that concern Azure and Google: the lifecycle's. The
// encryption, region and Object Lock mode are S3's.
func cloudProblems(o Options) error {
	if err := validPrefix(o.Prefix); err != nil {
		return fmt.Errorf("bucket: invalid options: %w", err)
	}
	if errs := o.lifecycleProblems(); len(errs) > 0 {
		return fmt.Errorf("bucket: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

// lockDays is the retention lock's period: BUCKET_OBJECT_LOCK_DAYS when given, else the
// shortest time any archive is kept (a longer lock would make the lifecycle's deletes of the
// shorter-kept archives fail); 0 when archives never expire and no period is given. why says
// how it was chosen.
func lockDays(o Options) (days int, why string) {
	shortest := o.ExpireDays
	if o.Retention.Set() {
		shortest = RetentionPlan(o.Retention, true)[0].ExpireDays
	}
	switch {
	case o.ObjectLockDays > 0 && shortest > 0 && o.ObjectLockDays > shortest:
		return o.ObjectLockDays, fmt.Sprintf("BUCKET_OBJECT_LOCK_DAYS; it is longer than the %d days the shortest-kept archives live: their deletes fail until it ends", shortest)
	case o.ObjectLockDays > 0:
		return o.ObjectLockDays, "BUCKET_OBJECT_LOCK_DAYS"
	case shortest > 0:
		return shortest, "the shortest time an archive is kept, so that the lifecycle's deletes are never refused; set BUCKET_OBJECT_LOCK_DAYS to choose"
	}
	return 0, ""
}

// AzureSetup prints, for t, the lifecycle-management policy and the az commands that apply it,
// then the immutability (WORM) steps: a shell script an administrator runs.
func AzureSetup(w io.Writer, t AzureTarget, o Options) error {
	p, err := AzureLifecycle(t, o)
	if err != nil {
		return err
	}
	doc, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	o = o.withDefaults()
	acct := "--account-name " + t.Account + " --resource-group RESOURCE_GROUP"
	b := &strings.Builder{}
	fmt.Fprintf(b, "# setup-bucket for %s: pgoffsite holds no administrator's credentials for Azure; run these with `az login`\n", t.Location)
	fmt.Fprintf(b, "# as the storage account's owner (RESOURCE_GROUP is the account's resource group). Nothing here was changed.\n#\n")
	if o.Retention.Set() {
		fmt.Fprintf(b, "# 1. Lifecycle management for RETENTION (%s): one rule per class, matching the blob index tag\n", o.Retention)
		fmt.Fprintf(b, "#    %s=CLASS pgoffsite sets on each archive and manifest as it writes them:\n", retention.TagKey)
		for _, cp := range RetentionPlan(o.Retention, o.TransitionDays < 0) {
			fmt.Fprintf(b, "#      %s\n", azurePlanLine(cp))
		}
	} else {
		fmt.Fprintf(b, "# 1. Lifecycle management for everything under %s/%s:\n", t.Container, keyPrefix(t.Prefix))
	}
	fmt.Fprintf(b, "cat > pgoffsite-lifecycle.json <<'EOF'\n%s\nEOF\n", doc)
	if len(p.Rules) == 0 {
		fmt.Fprintf(b, "# (no rule: archives stay in the Hot tier and never expire; BUCKET_TRANSITION_DAYS and BUCKET_EXPIRE_DAYS set them)\n")
	}
	fmt.Fprintf(b, "# The account's policy is one document: merge these rules into an existing one (az storage account management-policy show %s).\n", acct)
	fmt.Fprintf(b, "az storage account management-policy create %s --policy @pgoffsite-lifecycle.json\n#\n", acct)
	days, why := lockDays(o)
	fmt.Fprintf(b, "# 2. Immutability (WORM): no blob can be deleted or overwritten, not even with the account key, for the period\n")
	fmt.Fprintf(b, "#    after it was written. Azurite cannot apply it; Azure can. Version-level WORM needs blob versioning:\n")
	fmt.Fprintf(b, "az storage account blob-service-properties update %s --enable-versioning true\n", acct)
	if days == 0 {
		fmt.Fprintf(b, "# (no period: archives never expire; set BUCKET_OBJECT_LOCK_DAYS to print the policy)\n")
	} else {
		fmt.Fprintf(b, "# A time-based retention policy of %d days on the container (%s):\n", days, why)
		fmt.Fprintf(b, "az storage container immutability-policy create %s --container-name %s --period %d\n", acct, t.Container, days)
		fmt.Fprintf(b, "# Check it, then lock it: irreversible; a locked period can only be lengthened, and the container cannot be deleted while it holds blobs.\n")
		fmt.Fprintf(b, "az storage container immutability-policy lock %s --container-name %s --if-match \"$(az storage container immutability-policy show %s --container-name %s --query etag -o tsv)\"\n",
			acct, t.Container, acct, t.Container)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func azurePlanLine(cp ClassPlan) string {
	s := fmt.Sprintf("%s: deleted after %d days", cp.Class, cp.ExpireDays)
	if cp.Tier != "" {
		return s + fmt.Sprintf(", %s after %d days", strings.TrimPrefix(azureTier[cp.Tier], "tierTo"), cp.TransitionDays)
	}
	return s + ", stays Hot (" + cp.Why + ")"
}

// GCSSetup prints, for t, the lifecycle document and the gcloud command that applies it, then
// the bucket-lock steps: a shell script an administrator runs.
func GCSSetup(w io.Writer, t GCSTarget, o Options) error {
	doc, notes, err := GCSLifecycle(t, o)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	o = o.withDefaults()
	b := &strings.Builder{}
	bucket := "gs://" + t.Bucket
	fmt.Fprintf(b, "# setup-bucket for %s: pgoffsite holds no administrator's credentials for Google Cloud; run these with\n", t.Location)
	fmt.Fprintf(b, "# `gcloud auth login` as a storage admin of the bucket. Nothing here was changed.\n#\n")
	fmt.Fprintf(b, "# 1. Lifecycle")
	if o.Retention.Set() {
		fmt.Fprintf(b, " for RETENTION (%s)", o.Retention)
	}
	fmt.Fprintf(b, ":\n")
	for _, n := range notes {
		fmt.Fprintf(b, "#    %s.\n", n)
	}
	fmt.Fprintf(b, "cat > pgoffsite-lifecycle.json <<'EOF'\n%s\nEOF\n", js)
	fmt.Fprintf(b, "# The bucket's lifecycle is one document: merge these rules into an existing one (gcloud storage buckets describe %s --format='default(lifecycle_config)').\n", bucket)
	fmt.Fprintf(b, "gcloud storage buckets update %s --lifecycle-file=pgoffsite-lifecycle.json\n#\n", bucket)
	days, why := lockDays(o)
	fmt.Fprintf(b, "# 2. Bucket Lock: no object can be deleted or replaced, by anyone, until it is as old as the retention period.\n")
	fmt.Fprintf(b, "#    fake-gcs-server cannot apply it; Google can.\n")
	if days == 0 {
		fmt.Fprintf(b, "# (no period: archives never expire; set BUCKET_OBJECT_LOCK_DAYS to print the policy)\n")
	} else {
		fmt.Fprintf(b, "# A retention period of %d days (%s):\n", days, why)
		fmt.Fprintf(b, "gcloud storage buckets update %s --retention-period=%dd\n", bucket, days)
		fmt.Fprintf(b, "# Check it, then lock it: irreversible; a locked period can only be lengthened, and the bucket cannot be deleted while it holds objects.\n")
		fmt.Fprintf(b, "gcloud storage buckets update %s --lock-retention-period\n", bucket)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
