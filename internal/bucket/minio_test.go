package bucket

import (
	"github.com/pgoffsite/pgoffsite/internal/s3err"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/madmin-go/v3"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// addTiers makes the shared MinIO accept transitions to GLACIER and
// DEEP_ARCHIVE: MinIO rejects those storage classes unless remote tiers of
// those names exist. The tiers live on target, which must outlive the test.
func addTiers(t *testing.T, m *testenv.MinIO, target *extraMinIO) {
	t.Helper()
	ctx := context.Background()
	const tierBucket = "tiers"
	if _, err := target.Client(target.AccessKey, target.SecretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(tierBucket)}); err != nil {
		t.Fatalf("create tier bucket: %v", err)
	}
	adm := adminClient(t, m.Endpoint, m.AccessKey, m.SecretKey, nil)
	for _, name := range []string{ClassGlacier, ClassDeepArchive, ClassStandardIA} {
		cfg, err := madmin.NewTierMinIO(name, target.Endpoint, target.AccessKey, target.SecretKey, tierBucket, madmin.MinIOPrefix(name+"/"))
		if err != nil {
			t.Fatal(err)
		}
		err = adm.AddTier(ctx, cfg)
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("add tier %s: %v", name, err)
		}
	}
}

// readBack is what a bucket's settings read back as, for comparisons.
type readBack struct {
	Versioning string
	Encryption string
	Policy     string
	Lifecycle  []types.LifecycleRule
	ErrCodes   []string // settings that are absent
}

func readBucket(t *testing.T, c *s3.Client, bucket string) readBack {
	t.Helper()
	ctx := context.Background()
	b := aws.String(bucket)
	var rb readBack
	absent := func(what string, err error) {
		code := s3err.Code(err)
		if code == "" {
			t.Fatalf("read %s of %s: %v", what, bucket, err)
		}
		rb.ErrCodes = append(rb.ErrCodes, code)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
	if err != nil {
		t.Fatal(err)
	}
	rb.Versioning = string(v.Status)
	if e, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b}); err != nil {
		absent("encryption", err)
	} else {
		for _, r := range e.ServerSideEncryptionConfiguration.Rules {
			rb.Encryption += string(r.ApplyServerSideEncryptionByDefault.SSEAlgorithm)
		}
	}
	if p, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: b}); err != nil {
		absent("policy", err)
	} else {
		rb.Policy = aws.ToString(p.Policy)
	}
	if l, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b}); err != nil {
		absent("lifecycle", err)
	} else {
		rb.Lifecycle = l.Rules
	}
	return rb
}

func ruleByID(rules []types.LifecycleRule, id string) *types.LifecycleRule {
	for i := range rules {
		if aws.ToString(rules[i].ID) == id {
			return &rules[i]
		}
	}
	return nil
}

func sids(t *testing.T, policy string) []string {
	t.Helper()
	var out []string
	for _, s := range statementsOf(t, []byte(policy)) {
		out = append(out, s["Sid"].(string))
	}
	return out
}

func apply(t *testing.T, s *Setup) (Plan, []string) {
	t.Helper()
	p := mustPlan(t, s)
	warnings, err := s.Apply(context.Background(), p)
	if err != nil {
		t.Fatalf("Apply: %v\nplan:\n%s", err, p)
	}
	for _, w := range warnings {
		if strings.Contains(w, "reads back differently") {
			t.Errorf("Apply: %s", w)
		}
	}
	return p, warnings
}

func TestSetupOnMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	addTiers(t, m, startExtraMinIO(t, false))
	root := m.Client(t)
	ctx := context.Background()

	t.Run("fresh bucket", func(t *testing.T) {
		name := "pgoffsite-setup-" + randHex(4)
		s := NewSetup(root, Options{Bucket: name, Prefix: "pg", Region: m.Region,
			DeepArchiveDays: 120, ExpireDays: DefaultExpireDays})
		p, warnings := apply(t, s)
		if want := "create-bucket,versioning,encryption,public-access-block,bucket-policy,lifecycle"; kinds(p) != want {
			t.Errorf("plan = %s, want %s", kinds(p), want)
		}
		// MinIO has neither Block Public Access nor lifecycle-driven aborts.
		if !slices.Contains(warnings, warnNoPublicAccessBlock) || !slices.Contains(warnings, warnDropsAbort) {
			t.Errorf("Apply warnings = %q", warnings)
		}

		rb := readBucket(t, root, name)
		if rb.Versioning != "Enabled" || rb.Encryption != SSES3 {
			t.Errorf("versioning %q, encryption %q", rb.Versioning, rb.Encryption)
		}
		if got := sids(t, rb.Policy); !slices.Equal(got, []string{SidDenyInsecureTransport, SidDenyVersionDelete}) {
			t.Errorf("policy statements %q", got)
		}
		archive, deep := ruleByID(rb.Lifecycle, RuleArchive), ruleByID(rb.Lifecycle, RuleDeepArchive)
		if archive == nil || deep == nil {
			t.Fatalf("lifecycle rules %q", ruleIDs(rb.Lifecycle))
		}
		a := shapeOf(*archive, true)
		if a.Prefix != "pg/" || a.Transitions != "30:GLACIER" || a.ExpireDays != 400 || a.NoncurrentDays != 400 || a.Status != "Enabled" {
			t.Errorf("archive rule reads back as %+v", a)
		}
		if d := shapeOf(*deep, true); d.Prefix != "pg/" || d.Transitions != "120:DEEP_ARCHIVE" {
			t.Errorf("deep archive rule reads back as %+v", d)
		}

		again := mustPlan(t, s)
		if len(again.Actions) != 0 {
			t.Errorf("second plan:\n%s", again)
		}
		if !strings.Contains(again.String(), "no changes") {
			t.Errorf("second plan text %q", again.String())
		}
	})

	t.Run("plan alone changes nothing", func(t *testing.T) {
		name := m.CreateBucket(t, "pgoffsite-dry")
		before := readBucket(t, root, name)
		p := mustPlan(t, NewSetup(root, Options{Bucket: name, Prefix: "pg", Region: m.Region, ExpireDays: 90}))
		if want := "versioning,encryption,bucket-policy,lifecycle"; kinds(p) != want {
			t.Errorf("plan = %s, want %s", kinds(p), want)
		}
		if !slices.Contains(p.Warnings, warnNoPublicAccessBlock) {
			t.Errorf("plan warnings %q lack the public access warning", p.Warnings)
		}
		after := readBucket(t, root, name)
		if !equalJSON(before, after) {
			t.Errorf("bucket changed by Plan:\nbefore %+v\nafter  %+v", before, after)
		}
		if after.Versioning != "" || len(after.ErrCodes) != 3 {
			t.Errorf("bucket not bare: %+v", after)
		}
		if _, err := root.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("pgoffsite-never-" + randHex(4))}); err == nil {
			t.Error("HeadBucket of a missing bucket succeeded")
		}
	})

	t.Run("foreign rules and statements kept", func(t *testing.T) {
		name := m.CreateBucket(t, "pgoffsite-shared")
		foreignRule := types.LifecycleRule{ID: aws.String("logs-cleanup"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(7)}}
		if _, err := root.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(name),
			LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{foreignRule}}}); err != nil {
			t.Fatal(err)
		}
		publicRead := `{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*",` +
			`"Action":"s3:GetObject","Resource":"arn:aws:s3:::` + name + `/public/*"}]}`
		if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(name), Policy: aws.String(publicRead)}); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"public/page.html", "pg/secret.dump"} {
			if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
				t.Fatal(err)
			}
		}

		o := Options{Bucket: name, Prefix: "pg", Region: m.Region, ExpireDays: 400}
		apply(t, NewSetup(root, o))
		check := func(wantExpire int32) {
			t.Helper()
			rb := readBucket(t, root, name)
			if got := sids(t, rb.Policy); !slices.Equal(got, []string{"PublicRead", SidDenyInsecureTransport, SidDenyVersionDelete}) {
				t.Errorf("policy statements %q", got)
			}
			if got := ruleIDs(rb.Lifecycle); !slices.Equal(got, []string{"logs-cleanup", RuleArchive}) {
				t.Errorf("lifecycle rules %q", got)
			}
			if r := ruleByID(rb.Lifecycle, "logs-cleanup"); r == nil || shapeOf(*r, false) != shapeOf(foreignRule, false) {
				t.Errorf("foreign rule changed: %+v", r)
			}
			if r := ruleByID(rb.Lifecycle, RuleArchive); r == nil || shapeOf(*r, true).ExpireDays != wantExpire {
				t.Errorf("archive rule: %+v", r)
			}
			// Over plain http (this MinIO) the insecure-transport deny wins over the kept public-read
			// statement: every anonymous read is refused, the archive's above all.
			for key, want := range map[string]int{"public/page.html": 403, "pg/secret.dump": 403} {
				resp, err := http.Get(m.Endpoint + "/" + name + "/" + key)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("anonymous GET %s: %d, want %d", key, resp.StatusCode, want)
				}
			}
		}
		check(400)

		// Changing an option replaces our rule only.
		o.ExpireDays = 500
		p, _ := apply(t, NewSetup(root, o))
		if kinds(p) != KindLifecycle || !strings.Contains(p.Actions[0].Detail, "keeping 1 other rule") {
			t.Errorf("plan after changing expiry: %s", p)
		}
		check(500)
		if again := mustPlan(t, NewSetup(root, o)); len(again.Actions) != 0 {
			t.Errorf("plan after second apply:\n%s", again)
		}
	})

	t.Run("object lock", func(t *testing.T) {
		name := "pgoffsite-lock-" + randHex(4)
		s := NewSetup(root, Options{Bucket: name, Prefix: "pg", Region: m.Region, ExpireDays: 400, ObjectLockDays: 1})
		p, _ := apply(t, s)
		if !strings.Contains(p.Actions[0].Detail, "with Object Lock") || !strings.Contains(kinds(p), KindObjectLock) {
			t.Errorf("plan: %s", p)
		}
		lock, err := root.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if r := lock.ObjectLockConfiguration.Rule; r == nil || r.DefaultRetention.Mode != types.ObjectLockRetentionModeGovernance ||
			aws.ToInt32(r.DefaultRetention.Days) != 1 {
			t.Errorf("object lock configuration %+v", lock.ObjectLockConfiguration)
		}
		put, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("pg/a.dump"), Body: strings.NewReader("archive")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: aws.String("pg/a.dump"), VersionId: put.VersionId})
		if err == nil {
			t.Error("deleting a version under default retention succeeded")
		}
		if again := mustPlan(t, s); len(again.Actions) != 0 {
			t.Errorf("second plan:\n%s", again)
		}

		plain := m.CreateBucket(t, "pgoffsite-nolock")
		_, err = NewSetup(root, Options{Bucket: plain, Region: m.Region, ObjectLockDays: 1}).Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "only when it creates a bucket") {
			t.Errorf("Plan for Object Lock on a bucket without it: %v", err)
		}
	})

	t.Run("public access block request", func(t *testing.T) {
		name := m.CreateBucket(t, "pgoffsite-pab")
		rec := &pabRecorder{next: http.DefaultTransport}
		c := s3Client(m.Endpoint, m.Region, m.AccessKey, m.SecretKey, &http.Client{Transport: rec})
		_, warnings := apply(t, NewSetup(c, Options{Bucket: name, Region: m.Region}))
		if len(rec.puts) != 1 {
			t.Fatalf("%d PutPublicAccessBlock requests", len(rec.puts))
		}
		for _, want := range []string{"<BlockPublicAcls>true</BlockPublicAcls>", "<IgnorePublicAcls>true</IgnorePublicAcls>",
			"<BlockPublicPolicy>true</BlockPublicPolicy>", "<RestrictPublicBuckets>true</RestrictPublicBuckets>"} {
			if !strings.Contains(rec.puts[0], want) {
				t.Errorf("PutPublicAccessBlock body %s lacks %s", rec.puts[0], want)
			}
		}
		// MinIO lacks the feature: it answers the Put with 501 or 400 MalformedXML, depending on
		// the version; either way setup warns instead of failing.
		if rec.answer != http.StatusNotImplemented && rec.answer != http.StatusBadRequest {
			t.Errorf("MinIO answered PutPublicAccessBlock with %d", rec.answer)
		}
		if !slices.Contains(warnings, warnNoPublicAccessBlock) {
			t.Errorf("warnings %q", warnings)
		}
	})
}

// pabRecorder passes requests to MinIO, except that it answers the first
// GetPublicAccessBlock as Amazon S3 does for a bucket without the setting,
// so that setup sends PutPublicAccessBlock, whose body it records.
type pabRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	faked  bool
	puts   []string
	answer int
}

func (r *pabRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.URL.Query()["publicAccessBlock"]; !ok {
		return r.next.RoundTrip(req)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method == http.MethodGet && !r.faked {
		r.faked = true
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchPublicAccessBlockConfiguration</Code><Message>none</Message></Error>`
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	if req.Method == http.MethodPut {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		r.puts = append(r.puts, string(b))
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut {
		r.answer = resp.StatusCode
	}
	return resp, err
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestUploaderPolicyIsWriteOnly holds a MinIO user to exactly UploaderPolicy
// (and another to ReaderPolicy) and checks what each may do. The policies
// allow TLS requests only, so the server runs with TLS.
func TestUploaderPolicyIsWriteOnly(t *testing.T) {
	srv := startExtraMinIO(t, true)
	ctx := context.Background()
	root := srv.Client(srv.AccessKey, srv.SecretKey)
	const bucket = "archive"
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	put := func(c *s3.Client, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("dump bytes")})
		return err
	}
	if err := put(root, "pg/existing.dump"); err != nil {
		t.Fatal(err)
	}

	// MinIO's policy language has no s3:if-none-match or s3:ObjectCreationOperation: it refuses
	// the AWS policy, and gets the one `pgoffsite policy --conditional-writes=false` prints.
	aws3, err := UploaderPolicy(bucket, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Admin(t).AddCannedPolicy(ctx, "aws-uploader", aws3); err == nil || !strings.Contains(err.Error(), "condition key") {
		t.Errorf("MinIO took the policy with the conditional-write statement (%v): test that it enforces it", err)
	}
	doc, err := UploaderPolicyWith(bucket, "pg", UploaderOptions{NoConditionalWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	ak, sk := addUser(t, srv.Admin(t), "uploader", doc)
	up := srv.Client(ak, sk)

	t.Run("allowed", func(t *testing.T) {
		if err := put(up, "pg/new.dump"); err != nil {
			t.Errorf("PutObject under the prefix: %v", err)
		}
		// A multipart upload completed, and one aborted.
		key := aws.String("pg/big.dump")
		mpu, err := up.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		var parts []types.CompletedPart
		for i, size := range []int{5 << 20, 1000} {
			n := int32(i + 1)
			out, err := up.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: mpu.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(make([]byte, size))})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", n, err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
		}
		if _, err := up.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key,
			UploadId: mpu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		head, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
		if err != nil || aws.ToInt64(head.ContentLength) != 5<<20+1000 {
			t.Errorf("uploaded object: %v, %+v", err, head)
		}
		abandoned, err := up.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("pg/failed.dump")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket),
			Key: aws.String("pg/failed.dump"), UploadId: abandoned.UploadId}); err != nil {
			t.Errorf("AbortMultipartUpload: %v", err)
		}
	})

	t.Run("denied", func(t *testing.T) {
		b := aws.String(bucket)
		denied := map[string]error{
			"GetObject": func() error {
				_, err := up.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")})
				return err
			}(),
			"ListObjectsV2": func() error {
				_, err := up.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("pg/")})
				return err
			}(),
			"ListObjectVersions": func() error {
				_, err := up.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b})
				return err
			}(),
			"DeleteObject": func() error {
				_, err := up.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")})
				return err
			}(),
			"PutObject outside the prefix": put(up, "other/x.dump"),
			"PutObject beside the prefix":  put(up, "pgx/x.dump"),
			"PutBucketPolicy": func() error {
				_, err := up.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: b, Policy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
				return err
			}(),
			"PutBucketLifecycleConfiguration": func() error {
				_, err := up.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
					LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("wipe"),
						Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
						Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}}}}})
				return err
			}(),
		}
		for op, err := range denied {
			if code := s3err.Code(err); code != "AccessDenied" {
				t.Errorf("%s as uploader: %v, want AccessDenied", op, err)
			}
		}
		if _, err := up.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")}); s3err.Status(err) != http.StatusForbidden {
			t.Errorf("HeadObject as uploader: %v, want 403", err)
		}
		if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")}); err != nil {
			t.Errorf("existing archive gone: %v", err)
		}
	})

	t.Run("retention", func(t *testing.T) {
		b := aws.String(bucket)
		putTagged := func(key, tagging string) error {
			_, err := up.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader("dump bytes"), Tagging: aws.String(tagging)})
			return err
		}
		tags := func(key string) string {
			out, err := root.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GetObjectTagging %s: %v", key, err)
			}
			var kv []string
			for _, tg := range out.TagSet {
				kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
			}
			return strings.Join(kv, "&")
		}
		for _, class := range []string{"daily", "weekly", "monthly", "yearly"} {
			key := "pg/tagged-" + class + ".dump"
			if err := putTagged(key, "retention="+class); err != nil {
				t.Errorf("PutObject tagged retention=%s: %v", class, err)
			} else if got := tags(key); got != "retention="+class {
				t.Errorf("%s tagged %q", key, got)
			}
		}
		// Tagged at CreateMultipartUpload, as s3store does for a big archive.
		key := aws.String("pg/tagged-big.dump")
		mpu, err := up.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key, Tagging: aws.String("retention=yearly")})
		if err != nil {
			t.Fatalf("CreateMultipartUpload tagged: %v", err)
		}
		part, err := up.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: mpu.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: mpu.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
			t.Fatal(err)
		}
		if got := tags(*key); got != "retention=yearly" {
			t.Errorf("multipart upload tagged %q", got)
		}
		// Amazon S3 authorizes the tag as s3:PutObjectTagging, whose conditions allow only the
		// retention key and its four values (TestUploaderPolicy); MinIO authorizes tags on a new
		// object as s3:PutObject alone, so those conditions cannot be shown here.
		// The markers: written, and looked up by listing exactly one key under the marker prefix.
		marker := MarkerPrefix("pg") + "shop/DATABASE/monthly/2026-11"
		if err := put(up, marker); err != nil {
			t.Errorf("PutObject of a marker: %v", err)
		}
		for k, want := range map[string]int{marker: 1, MarkerPrefix("pg") + "shop/DATABASE/monthly/2026-12": 0} {
			out, err := up.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String(k), MaxKeys: aws.Int32(1)})
			if err != nil || len(out.Contents) != want {
				t.Errorf("list marker %s: %v, %d keys, want %d", k, err, len(out.Contents), want)
			}
		}
		// Archives stay out of reach: no list beside the markers, no read, no delete.
		for _, prefix := range []string{"pg/", "pg/shop", "pg/_pgoffsite-retention", ""} {
			if _, err := up.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String(prefix)}); s3err.Code(err) != "AccessDenied" {
				t.Errorf("ListObjectsV2 prefix %q as uploader: %v, want AccessDenied", prefix, err)
			}
		}
		if _, err := up.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("pg/tagged-monthly.dump")}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("GetObject of a tagged archive: %v, want AccessDenied", err)
		}
		if _, err := up.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(marker)}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("GetObject of a marker: %v, want AccessDenied (a lookup lists, it never reads)", err)
		}
		if _, err := up.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("pg/tagged-monthly.dump")}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("DeleteObject of a tagged archive: %v, want AccessDenied", err)
		}
		if _, err := up.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String(marker)}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("DeleteObject of a marker: %v, want AccessDenied", err)
		}
	})

	t.Run("reader", func(t *testing.T) {
		doc, err := ReaderPolicy(bucket, "pg")
		if err != nil {
			t.Fatal(err)
		}
		rk, rs := addUser(t, srv.Admin(t), "reader", doc)
		rd := srv.Client(rk, rs)
		b := aws.String(bucket)
		if _, err := rd.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")}); err != nil {
			t.Errorf("GetObject as reader: %v", err)
		}
		if _, err := rd.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("pg/")}); err != nil {
			t.Errorf("ListObjectsV2 pg/ as reader: %v", err)
		}
		if _, err := rd.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("ListObjectsV2 of the whole bucket as reader: %v, want AccessDenied", err)
		}
		// The reader sees the lifecycle rules, so check can compare them with RETENTION; the
		// uploader cannot, and check says so.
		pol, _ := retention.Parse("daily=35d monthly=25m")
		o := Options{Bucket: bucket, Prefix: "pg", Retention: pol}
		if drift, err := RetentionDrift(ctx, rd, o); err != nil || len(drift) != 3 {
			t.Errorf("RetentionDrift as reader of a bucket without rules: %v %v, want the 3 rules missing", drift, err)
		}
		if _, err := RetentionDrift(ctx, up, o); !errors.Is(err, ErrRulesUnreadable) {
			t.Errorf("RetentionDrift as uploader: %v, want ErrRulesUnreadable", err)
		}
		if err := put(rd, "pg/x.dump"); s3err.Code(err) != "AccessDenied" {
			t.Errorf("PutObject as reader: %v, want AccessDenied", err)
		}
		// The record of a verification, and nothing else, whatever suffix or place.
		for _, key := range []string{"pg/shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.verified.json",
			"pg/shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.age.verified.json"} {
			if err := put(rd, key); err != nil {
				t.Errorf("PutObject %s as reader: %v", key, err)
			}
			if err := put(rd, key); err != nil {
				t.Errorf("PutObject %s again as reader (a later verification): %v", key, err)
			}
		}
		for _, key := range []string{"pg/x.dump", "pg/x.dump.age", "pg/x.json", "pg/existing.dump", "pg/x.verified.json.dump",
			"pg/x.verified.jsonx", "other/x.verified.json", "pgx/x.verified.json", "x.verified.json"} {
			if err := put(rd, key); s3err.Code(err) != "AccessDenied" {
				t.Errorf("PutObject %s as reader: %v, want AccessDenied", key, err)
			}
		}
		// What pgoffsite status and verify do with these credentials, through their own code:
		// list, read a manifest, record a verification; and not overwrite a manifest.
		r := s3store.NewReader(rd, bucket, "pg")
		if err := put(root, "pg/shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.json"); err != nil {
			t.Fatal(err)
		}
		// The listing sees versions: the reader may list them (s3:ListBucketVersions), under the
		// prefix only.
		if l, err := r.List(ctx, "shop/"); err != nil || len(l.Objects) < 2 || !l.Versions || l.VersionsErr != nil {
			t.Errorf("List as reader: %+v %v", l, err)
		}
		if _, err := rd.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b, Prefix: aws.String("pg/")}); err != nil {
			t.Errorf("ListObjectVersions pg/ as reader: %v", err)
		}
		if _, err := rd.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("ListObjectVersions of the whole bucket as reader: %v, want AccessDenied", err)
		}
		if body, _, err := r.Open(ctx, "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.json"); err != nil {
			t.Errorf("Open a manifest as reader: %v", err)
		} else {
			body.Close()
		}
		if err := r.Replace(ctx, "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.verified.json", []byte(`{"passed":true}`)); err != nil {
			t.Errorf("Replace a verification record as reader: %v", err)
		}
		if err := r.Replace(ctx, "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.json", []byte(`{}`)); s3err.Code(err) != "AccessDenied" {
			t.Errorf("Replace a manifest as reader: %v, want AccessDenied", err)
		}
		if _, err := rd.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("pg/existing.dump"),
			CopySource: aws.String(bucket + "/pg/x.verified.json")}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("CopyObject over an archive as reader: %v, want AccessDenied", err)
		}
		if _, err := rd.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("pg/existing.dump")}); s3err.Code(err) != "AccessDenied" {
			t.Errorf("DeleteObject as reader: %v, want AccessDenied", err)
		}
	})

	t.Run("plain http refused", func(t *testing.T) {
		plain := startExtraMinIO(t, false)
		c := plain.Client(plain.AccessKey, plain.SecretKey)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		ak, sk := addUser(t, plain.Admin(t), "uploader", doc)
		err := put(plain.Client(ak, sk), "pg/new.dump")
		var re *awshttp.ResponseError
		if s3err.Code(err) != "AccessDenied" || !errors.As(err, &re) {
			t.Errorf("PutObject without TLS: %v, want AccessDenied", err)
		}
	})
}

// With RETENTION, setup-bucket writes one rule per class (prefix and tag), keeps the cleanup of
// replaced versions and unfinished uploads, and a second run changes nothing. The rules read
// back from MinIO are RETENTION's.
func TestSetupRetentionOnMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	addTiers(t, m, startExtraMinIO(t, false))
	ctx := context.Background()
	client := m.Client(t)
	name := m.CreateBucket(t, "gfs")
	pol, err := retention.Parse("daily=35d weekly=13w monthly=25m yearly=7y")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Bucket: name, Prefix: "pg", Region: m.Region, Retention: pol}
	first, _ := apply(t, NewSetup(client, o))
	var lc string
	for _, a := range first.Actions {
		if a.Kind == KindLifecycle {
			lc = a.Detail
		}
	}
	for _, want := range []string{"daily: expire after 35 days, stay in STANDARD", "weekly: expire after 91 days, move to STANDARD_IA after 30 days",
		"monthly: expire after 775 days, move to GLACIER after 30 days", "yearly: expire after 2562 days, move to DEEP_ARCHIVE after 30 days",
		"no early-deletion fee", "untagged archives"} {
		if !strings.Contains(lc, want) {
			t.Errorf("lifecycle action %q lacks %q", lc, want)
		}
	}
	if again := mustPlan(t, NewSetup(client, o)); len(again.Actions) != 0 || !strings.Contains(again.String(), "no changes") {
		t.Errorf("second run: %s", again)
	}
	rb := readBucket(t, client, name)
	got := map[string]ruleShape{}
	for _, r := range rb.Lifecycle {
		got[aws.ToString(r.ID)] = shapeOf(r, true)
	}
	want := map[string]ruleShape{
		// A version replaced by an overwrite is kept as long as its class keeps archives.
		RuleArchive:                   {Status: "Enabled", Prefix: "pg/", NoncurrentDays: 2562},
		RetentionRulePrefix + "daily": {Status: "Enabled", Prefix: "pg/", Tags: "retention=daily", ExpireDays: 35, NoncurrentDays: 35},
		RetentionRulePrefix + "weekly": {Status: "Enabled", Prefix: "pg/", Tags: "retention=weekly", ExpireDays: 91, NoncurrentDays: 91,
			Transitions: "30:STANDARD_IA"},
		RetentionRulePrefix + "monthly": {Status: "Enabled", Prefix: "pg/", Tags: "retention=monthly", ExpireDays: 775, NoncurrentDays: 775,
			Transitions: "30:GLACIER"},
		RetentionRulePrefix + "yearly": {Status: "Enabled", Prefix: "pg/", Tags: "retention=yearly", ExpireDays: 2562, NoncurrentDays: 2562,
			Transitions: "30:DEEP_ARCHIVE"},
	}
	if len(got) != len(want) {
		t.Errorf("rules read back: %+v", got)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("rule %s reads back %+v, want %+v", id, got[id], w)
		}
	}

	// RETENTION changed: only what differs is rewritten, a class no longer listed is dropped.
	shorter, _ := retention.Parse("daily=14d monthly=13m")
	o.Retention = shorter
	p, _ := apply(t, NewSetup(client, o))
	if len(p.Actions) != 1 || !strings.Contains(p.Actions[0].Detail, RetentionRulePrefix+"weekly") {
		t.Errorf("after RETENTION changed: %s", p)
	}
	rb = readBucket(t, client, name)
	if ruleByID(rb.Lifecycle, RetentionRulePrefix+"weekly") != nil || ruleByID(rb.Lifecycle, RetentionRulePrefix+"yearly") != nil {
		t.Errorf("classes no longer listed kept their rules: %v", ruleIDs(rb.Lifecycle))
	}
	if r := ruleByID(rb.Lifecycle, RetentionRulePrefix+"monthly"); r == nil || shapeOf(*r, true).ExpireDays != 403 {
		t.Errorf("monthly rule after the change: %+v", r)
	}
	if again := mustPlan(t, NewSetup(client, o)); len(again.Actions) != 0 {
		t.Errorf("second run after the change: %s", again)
	}
	// RETENTION dropped: setup says what that does to the tagged archives before doing it.
	o.Retention = retention.Policy{}
	if p := mustPlan(t, NewSetup(client, o)); !strings.Contains(p.String(), "warning: RETENTION is not set, yet the bucket has its per-class rules") {
		t.Errorf("RETENTION dropped: %s", p)
	}
	_ = ctx
}
