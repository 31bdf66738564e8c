// Package bucket makes an S3 bucket safe to archive into: it exists in the
// right region, is versioned, encrypted, closed to the public, denies
// insecure access and version deletion, and moves old archives to cold
// storage and expires them. Setup computes a Plan from the bucket's current
// state and applies it; it merges with settings it does not own instead of
// replacing them. It also writes the IAM policies of the uploader and reader
// credentials.
package bucket

import (
	"github.com/pgoffsite/pgoffsite/internal/s3err"

	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3API is the part of *s3.Client that setup uses, grouped by concern.
type S3API interface {
	locator
	versioningAPI
	encryptionAPI
	publicAccessAPI
	policyAPI
	lifecycleAPI
	objectLockAPI
}

type locator interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetBucketLocation(context.Context, *s3.GetBucketLocationInput, ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error)
	CreateBucket(context.Context, *s3.CreateBucketInput, ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
}

type versioningAPI interface {
	GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
	PutBucketVersioning(context.Context, *s3.PutBucketVersioningInput, ...func(*s3.Options)) (*s3.PutBucketVersioningOutput, error)
}

type encryptionAPI interface {
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	PutBucketEncryption(context.Context, *s3.PutBucketEncryptionInput, ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
}

type publicAccessAPI interface {
	GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
	PutPublicAccessBlock(context.Context, *s3.PutPublicAccessBlockInput, ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
}

type policyAPI interface {
	GetBucketPolicy(context.Context, *s3.GetBucketPolicyInput, ...func(*s3.Options)) (*s3.GetBucketPolicyOutput, error)
	PutBucketPolicy(context.Context, *s3.PutBucketPolicyInput, ...func(*s3.Options)) (*s3.PutBucketPolicyOutput, error)
}

type lifecycleAPI interface {
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	PutBucketLifecycleConfiguration(context.Context, *s3.PutBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

type objectLockAPI interface {
	GetObjectLockConfiguration(context.Context, *s3.GetObjectLockConfigurationInput, ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
	PutObjectLockConfiguration(context.Context, *s3.PutObjectLockConfigurationInput, ...func(*s3.Options)) (*s3.PutObjectLockConfigurationOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// Kinds of Action.
const (
	KindCreateBucket = "create-bucket"
	KindVersioning   = "versioning"
	KindEncryption   = "encryption"
	KindPublicAccess = "public-access-block"
	KindPolicy       = "bucket-policy"
	KindLifecycle    = "lifecycle"
	KindObjectLock   = "object-lock"
)

// Action is one change setup would make to the bucket.
type Action struct {
	Kind   string
	Detail string
	// apply makes the change; a non-empty warning means the store could
	// not make it but the rest of the setup can go on.
	apply func(ctx context.Context) (warning string, err error)
}

// Plan is what setup would change, in the order it would change it.
// Warnings are risks that no action can remove on this store.
type Plan struct {
	Bucket   string
	Actions  []Action
	Warnings []string
}

// String lists the plan for people, "no changes" when there are none.
func (p Plan) String() string {
	var b strings.Builder
	if len(p.Actions) == 0 {
		fmt.Fprintf(&b, "bucket %s: no changes\n", p.Bucket)
	}
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "bucket %s: %s: %s\n", p.Bucket, a.Kind, a.Detail)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "bucket %s: warning: %s\n", p.Bucket, w)
	}
	return b.String()
}

// Setup brings one bucket to the state Options describe.
type Setup struct {
	client S3API
	o      Options
}

// NewSetup returns a Setup for o.Bucket, reached through client.
func NewSetup(client S3API, o Options) *Setup {
	return &Setup{client: client, o: o.withDefaults()}
}

// Warning texts; Plan and Apply use the same text for the same risk.
const (
	warnNoPublicAccessBlock = "this S3 store does not implement Block Public Access " +
		"(PutPublicAccessBlock answers NotImplemented): nothing at the store level stops a later " +
		"bucket policy or ACL from making archives public; keep anonymous access off in the store's own settings"
	warnDropsAbort = "this S3 store (MinIO) ignores AbortIncompleteMultipartUpload in lifecycle rules: " +
		"it removes unfinished multipart uploads itself (MinIO setting api stale_uploads_expiry, 24h by default)"
)

// Plan reads the bucket's current settings and returns what Apply would
// change. It writes nothing.
func (s *Setup) Plan(ctx context.Context) (Plan, error) {
	o := s.o
	if err := o.validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{Bucket: o.Bucket}
	st, err := s.read(ctx)
	if err != nil {
		return Plan{}, err
	}
	if !st.exists {
		s.planCreate(&p)
	}
	if o.ObjectLockDays > 0 && st.exists && !st.lockEnabled {
		return Plan{}, fmt.Errorf("bucket: %s: Object Lock is not enabled on this bucket, and pgoffsite "+
			"enables it only when it creates a bucket: either name a bucket that does not exist yet "+
			"(setup creates it with Object Lock), enable Object Lock on this bucket yourself where the "+
			"store allows it (Amazon S3 does for versioned buckets), or set object lock days to 0", o.Bucket)
	}
	s.planVersioning(&p, st)
	s.planEncryption(&p, st)
	s.planPublicAccess(&p, st)
	if err := s.planPolicy(&p, st); err != nil {
		return Plan{}, err
	}
	s.planLifecycle(&p, st)
	s.planObjectLock(&p, st)
	p.Warnings = append(p.Warnings, s.optionWarnings()...)
	return p, nil
}

// Apply makes the changes in p, in order, and then reads the bucket back.
// It returns warnings about risks the store left open (an action it does
// not implement, a setting that reads back differently); they are not
// failures. It stops at the first failing action: running setup again
// applies only what is still missing.
func (s *Setup) Apply(ctx context.Context, p Plan) (warnings []string, err error) {
	if len(p.Actions) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, w := range p.Warnings {
		seen[w] = true
	}
	warn := func(w string) {
		if !seen[w] {
			seen[w] = true
			warnings = append(warnings, w)
		}
	}
	for _, a := range p.Actions {
		w, err := a.apply(ctx)
		if err != nil {
			return warnings, fmt.Errorf("bucket: %s: %s: %w", p.Bucket, a.Kind, err)
		}
		if w != "" {
			warn(w)
		}
	}

	// Stores can accept a setting and silently store something else.
	after, err := s.Plan(ctx)
	if err != nil {
		return warnings, fmt.Errorf("bucket: %s: read back after setup: %w", p.Bucket, err)
	}
	for _, w := range after.Warnings {
		warn(w)
	}
	for _, a := range after.Actions {
		warn(fmt.Sprintf("%s reads back differently right after setup (still needs: %s); "+
			"Amazon S3 can take a few minutes to show new bucket settings: run setup again later to check",
			a.Kind, a.Detail))
	}
	return warnings, nil
}

// state is what Plan reads from the bucket.
type state struct {
	exists         bool
	versioning     types.BucketVersioningStatus
	sse            *types.ServerSideEncryptionByDefault
	pab            *types.PublicAccessBlockConfiguration
	pabUnsupported bool
	policy         string
	rules          []types.LifecycleRule
	minObjectSize  types.TransitionDefaultMinimumObjectSize
	dropsAbort     bool
	lockEnabled    bool
	lockRule       *types.ObjectLockRule
}

func (s *Setup) read(ctx context.Context) (state, error) {
	var st state
	b := aws.String(s.o.Bucket)
	fail := func(what string, err error) (state, error) {
		return state{}, fmt.Errorf("bucket: %s: read %s: %w", s.o.Bucket, what, err)
	}
	exists, err := s.locate(ctx)
	if err != nil || !exists {
		return st, err
	}
	st.exists = true

	ver, err := s.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
	if err != nil {
		return fail("versioning", err)
	}
	st.versioning = ver.Status

	enc, err := s.client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
	switch {
	case err == nil:
		if c := enc.ServerSideEncryptionConfiguration; c != nil && len(c.Rules) > 0 {
			st.sse = c.Rules[0].ApplyServerSideEncryptionByDefault
		}
	case s3err.Code(err) == "ServerSideEncryptionConfigurationNotFoundError":
	default:
		return fail("default encryption", err)
	}

	pab, err := s.client.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b})
	switch {
	case err == nil:
		st.pab = pab.PublicAccessBlockConfiguration
	case s3err.Code(err) == "NoSuchPublicAccessBlockConfiguration":
	case s3err.Of(err) == s3err.NotImplemented:
		st.pabUnsupported = true
	default:
		return fail("public access block", err)
	}

	pol, err := s.client.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: b})
	switch {
	case err == nil:
		st.policy = aws.ToString(pol.Policy)
	case s3err.Code(err) == "NoSuchBucketPolicy":
	default:
		return fail("bucket policy", err)
	}

	lc, err := s.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
	switch {
	case err == nil:
		st.rules = lc.Rules
		st.minObjectSize = lc.TransitionDefaultMinimumObjectSize
		st.dropsAbort = isMinIO(lc.ResultMetadata)
	case s3err.Code(err) == "NoSuchLifecycleConfiguration":
	default:
		return fail("lifecycle configuration", err)
	}

	if s.o.ObjectLockDays > 0 {
		lock, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: b})
		switch {
		case err == nil:
			if c := lock.ObjectLockConfiguration; c != nil {
				st.lockEnabled = c.ObjectLockEnabled == types.ObjectLockEnabledEnabled
				st.lockRule = c.Rule
			}
		case s3err.Code(err) == "ObjectLockConfigurationNotFoundError":
		default:
			return fail("object lock configuration", err)
		}
	}
	return st, nil
}

// locate reports whether the bucket exists, and fails when it exists in
// another region or belongs to someone else.
func (s *Setup) locate(ctx context.Context) (bool, error) {
	name, want := s.o.Bucket, s.o.Region
	out, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	if err == nil {
		region := aws.ToString(out.BucketRegion)
		if region == "" {
			loc, err := s.client.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
			if err != nil {
				return false, fmt.Errorf("bucket: %s: read location: %w", name, err)
			}
			region = normalizeRegion(string(loc.LocationConstraint))
		}
		if region != want {
			return false, wrongRegion(name, region, want)
		}
		return true, nil
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if region := re.Response.Header.Get("X-Amz-Bucket-Region"); region != "" && region != want {
			return false, wrongRegion(name, region, want)
		}
	}
	switch s3err.Status(err) {
	case http.StatusNotFound:
		return false, nil
	case http.StatusForbidden:
		return false, fmt.Errorf("bucket: %s: the bucket exists but these credentials may not use it "+
			"(it belongs to another account, or the credentials lack s3:ListBucket on it): "+
			"use the owner's credentials or choose another bucket name", name)
	case http.StatusMovedPermanently:
		return false, fmt.Errorf("bucket: %s: the bucket exists in a region other than %s: "+
			"configure the bucket's region or choose another bucket name", name, want)
	}
	return false, fmt.Errorf("bucket: %s: look up: %w", name, err)
}

func wrongRegion(name, have, want string) error {
	return fmt.Errorf("bucket: %s: the bucket is in region %s, not %s: configure region %s, "+
		"or choose another bucket name to have one created in %s", name, have, want, have, want)
}

// normalizeRegion maps GetBucketLocation's legacy answers to region names.
func normalizeRegion(loc string) string {
	switch loc {
	case "":
		return "us-east-1"
	case "EU":
		return "eu-west-1"
	}
	return loc
}

func (s *Setup) planCreate(p *Plan) {
	o := s.o
	detail := fmt.Sprintf("create bucket %s in %s", o.Bucket, o.Region)
	if o.ObjectLockDays > 0 {
		detail += " with Object Lock enabled"
	}
	p.Actions = append(p.Actions, Action{Kind: KindCreateBucket, Detail: detail, apply: func(ctx context.Context) (string, error) {
		in := &s3.CreateBucketInput{Bucket: aws.String(o.Bucket)}
		// us-east-1 is the default and Amazon S3 rejects it as a constraint.
		if o.Region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
				LocationConstraint: types.BucketLocationConstraint(o.Region),
			}
		}
		if o.ObjectLockDays > 0 {
			in.ObjectLockEnabledForBucket = aws.Bool(true)
		}
		_, err := s.client.CreateBucket(ctx, in)
		switch s3err.Code(err) {
		case "":
			return "", err
		case "BucketAlreadyOwnedByYou":
			return "", nil // created meanwhile by us; the read-back checks the rest
		case "BucketAlreadyExists":
			return "", fmt.Errorf("the name %s is taken by another account (bucket names are global): choose another bucket name", o.Bucket)
		}
		return "", err
	}})
}

func (s *Setup) planVersioning(p *Plan, st state) {
	if st.versioning == types.BucketVersioningStatusEnabled {
		return
	}
	b := s.o.Bucket
	p.Actions = append(p.Actions, Action{Kind: KindVersioning, Detail: "enable versioning (overwrites and deletes keep the old version)",
		apply: func(ctx context.Context) (string, error) {
			_, err := s.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
				Bucket:                  aws.String(b),
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
			})
			return "", err
		}})
}

func (s *Setup) planEncryption(p *Plan, st state) {
	o := s.o
	want := o.SSE
	if want == "" {
		want = SSES3
		// Unasked, never replace a KMS default by the weaker SSE-S3.
		if st.sse != nil && strings.HasPrefix(string(st.sse.SSEAlgorithm), SSEKMS) {
			return
		}
	}
	if st.sse != nil && string(st.sse.SSEAlgorithm) == want &&
		(want != SSEKMS || o.KMSKeyID == "" || sameKMSKey(aws.ToString(st.sse.KMSMasterKeyID), o.KMSKeyID)) {
		return
	}
	detail := "default encryption SSE-S3 (AES256)"
	rule := types.ServerSideEncryptionRule{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{
		SSEAlgorithm: types.ServerSideEncryption(want),
	}}
	if want == SSEKMS {
		key := "the AWS-managed key aws/s3"
		if o.KMSKeyID != "" {
			rule.ApplyServerSideEncryptionByDefault.KMSMasterKeyID = aws.String(o.KMSKeyID)
			key = "key " + o.KMSKeyID
		}
		// An S3 Bucket Key cuts KMS requests (and their cost) per object.
		rule.BucketKeyEnabled = aws.Bool(true)
		detail = "default encryption SSE-KMS with " + key
	}
	if st.sse != nil {
		detail += fmt.Sprintf(" (was %s)", st.sse.SSEAlgorithm)
	}
	p.Actions = append(p.Actions, Action{Kind: KindEncryption, Detail: detail, apply: func(ctx context.Context) (string, error) {
		_, err := s.client.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
			Bucket:                            aws.String(o.Bucket),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{rule}},
		})
		return "", err
	}})
}

// sameKMSKey matches a key ID against what a store returns, which may be
// the key's full ARN.
func sameKMSKey(have, want string) bool {
	return have == want || strings.HasSuffix(have, ":key/"+want) || strings.HasSuffix(have, ":"+want)
}

func (s *Setup) planPublicAccess(p *Plan, st state) {
	if st.pabUnsupported {
		p.Warnings = append(p.Warnings, warnNoPublicAccessBlock)
		return
	}
	if c := st.pab; c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.IgnorePublicAcls) &&
		aws.ToBool(c.BlockPublicPolicy) && aws.ToBool(c.RestrictPublicBuckets) {
		return
	}
	b := s.o.Bucket
	p.Actions = append(p.Actions, Action{Kind: KindPublicAccess,
		Detail: "block all public access (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)",
		apply: func(ctx context.Context) (string, error) {
			_, err := s.client.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
				Bucket: aws.String(b),
				PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
					BlockPublicAcls:       aws.Bool(true),
					IgnorePublicAcls:      aws.Bool(true),
					BlockPublicPolicy:     aws.Bool(true),
					RestrictPublicBuckets: aws.Bool(true),
				},
			})
			if s3err.Of(err) == s3err.NotImplemented {
				return warnNoPublicAccessBlock, nil
			}
			if err != nil {
				// Some stores answer the Put with another error (MinIO: 400 MalformedXML) while the
				// Get says plainly that the feature is not implemented: a warning, not a failure.
				_, gerr := s.client.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(b)})
				if s3err.Of(gerr) == s3err.NotImplemented {
					return warnNoPublicAccessBlock, nil
				}
			}
			return "", err
		}})
}

func (s *Setup) planPolicy(p *Plan, st state) error {
	o := s.o
	doc, changed, kept, err := mergePolicy(st.policy, ownStatements(o.Bucket, o.Prefix))
	if err != nil {
		return fmt.Errorf("bucket: %s: bucket policy: %w", o.Bucket, err)
	}
	if len(changed) == 0 {
		return nil
	}
	detail := fmt.Sprintf("set bucket policy statements %s: deny non-TLS access, deny s3:DeleteObjectVersion on %s and s3:DeleteBucket",
		strings.Join(changed, ", "), objectsARN(o.Bucket, o.Prefix))
	if kept > 0 {
		detail += fmt.Sprintf(" (keeping %d other statement(s))", kept)
	}
	p.Actions = append(p.Actions, Action{Kind: KindPolicy, Detail: detail, apply: func(ctx context.Context) (string, error) {
		_, err := s.client.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{
			Bucket: aws.String(o.Bucket),
			Policy: aws.String(string(doc)),
		})
		return "", err
	}})
	return nil
}

func (s *Setup) planLifecycle(p *Plan, st state) {
	o := s.o
	if st.dropsAbort {
		p.Warnings = append(p.Warnings, warnDropsAbort)
	}
	merged, changed := mergeRules(st.rules, ownRules(o), st.dropsAbort)
	if len(changed) == 0 {
		return
	}
	if !o.Retention.Set() && slices.ContainsFunc(st.rules, func(r types.LifecycleRule) bool {
		return strings.HasPrefix(aws.ToString(r.ID), RetentionRulePrefix)
	}) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("RETENTION is not set, yet the bucket has its per-class rules: they are removed, and "+
			"every archive, yearly and monthly ones included, then expires under the prefix-wide rule (%s); set RETENTION as the backup has it to keep them",
			expiryWords(o.ExpireDays)))
	}
	detail := fmt.Sprintf("set lifecycle rules %s %s", strings.Join(changed, ", "), describeRules(o))
	if others := len(merged) - len(ownRules(o)); others > 0 {
		detail += fmt.Sprintf(" (keeping %d other rule(s))", others)
	}
	p.Actions = append(p.Actions, Action{Kind: KindLifecycle, Detail: detail, apply: func(ctx context.Context) (string, error) {
		_, err := s.client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
			Bucket:                             aws.String(o.Bucket),
			LifecycleConfiguration:             &types.BucketLifecycleConfiguration{Rules: merged},
			TransitionDefaultMinimumObjectSize: st.minObjectSize,
		})
		return "", err
	}})
}

func (s *Setup) planObjectLock(p *Plan, st state) {
	o := s.o
	if o.ObjectLockDays == 0 {
		return
	}
	if r := st.lockRule; r != nil && r.DefaultRetention != nil &&
		string(r.DefaultRetention.Mode) == o.ObjectLockMode &&
		aws.ToInt32(r.DefaultRetention.Days) == int32(o.ObjectLockDays) && r.DefaultRetention.Years == nil {
		return
	}
	detail := fmt.Sprintf("set Object Lock default retention %s for %d days (no one can delete a new archive version before then)",
		o.ObjectLockMode, o.ObjectLockDays)
	p.Actions = append(p.Actions, Action{Kind: KindObjectLock, Detail: detail, apply: func(ctx context.Context) (string, error) {
		_, err := s.client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(o.Bucket),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{
				ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
					Mode: types.ObjectLockRetentionMode(o.ObjectLockMode),
					Days: aws.Int32(int32(o.ObjectLockDays)),
				}},
			},
		})
		return "", err
	}})
}

// optionWarnings are risks in the options themselves.
func (s *Setup) optionWarnings() []string {
	o := s.o
	var ws []string
	type stage struct {
		class      string
		start, end int
	}
	stages := []stage{{o.TransitionClass, o.TransitionDays, o.ExpireDays}}
	if o.DeepArchiveDays > 0 {
		stages = []stage{{o.TransitionClass, o.TransitionDays, o.DeepArchiveDays}, {ClassDeepArchive, o.DeepArchiveDays, o.ExpireDays}}
	}
	if o.Retention.Set() {
		stages = nil // the classes' own rules replace these; RetentionPlan keeps them past the minimums
	}
	for _, st := range stages {
		if st.end == 0 {
			continue
		}
		if minDays := minStorageDays[st.class]; st.end-st.start < minDays {
			ws = append(ws, fmt.Sprintf("archives leave %s after %d days there, less than its %d-day minimum storage "+
				"duration: Amazon S3 charges the remaining days as an early-deletion fee", st.class, st.end-st.start, minDays))
		}
	}
	if o.ObjectLockDays > 0 && o.ObjectLockMode == LockCompliance {
		ws = append(ws, fmt.Sprintf("Object Lock COMPLIANCE mode: no one, the account root user included, can delete an archive "+
			"version or shorten its retention during its %d days, and the bucket cannot be deleted while such versions exist", o.ObjectLockDays))
	}
	return ws
}

// isMinIO tells from the response's Server header whether the store is
// MinIO, whose lifecycle parser drops AbortIncompleteMultipartUpload.
func isMinIO(md middleware.Metadata) bool {
	resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	return ok && resp != nil && strings.HasPrefix(resp.Header.Get("Server"), "MinIO")
}

func expiryWords(days int) string {
	if days == 0 {
		return "never"
	}
	return fmt.Sprintf("after %d days", days)
}
