package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/madmin-go/v3"
)

// The uploader holds exactly what `pgoffsite policy` prints: backup works with it, and the same
// keys can neither read, list nor delete archives.
func TestBackupWithWriteOnlyPolicy(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 300)
	env := w.env("shop")
	// MinIO refuses the conditional-write statement's condition keys (internal/bucket tests the
	// statement): the policy for such a store.
	code, policy := w.run(map[string]string{"ARCHIVE_URL": env["ARCHIVE_URL"], "AWS_REGION": env["AWS_REGION"]}, "policy", "--conditional-writes=false")
	if code != ExitOK || !strings.Contains(policy, `"s3:PutObject"`) || strings.Contains(policy, "GetObject") {
		t.Fatalf("policy: exit %d\n%s", code, policy)
	}
	if !strings.Contains(policy, "warning: without the conditional-write statement") {
		t.Errorf("policy --conditional-writes=false does not say what the keys can then do")
	}
	policy = policy[:strings.LastIndex(policy, "}")+1] // the warning follows, on stderr

	// The test MinIO speaks plain http, so the policy's TLS-only condition would deny everything;
	// internal/bucket checks the policy with that condition against a MinIO serving TLS.
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatal(err)
	}
	for _, st := range doc["Statement"].([]any) {
		st := st.(map[string]any)
		if c, ok := st["Condition"].(map[string]any); ok {
			delete(c, "Bool") // aws:SecureTransport; the markers' s3:prefix condition stays
			if len(c) == 0 {
				delete(st, "Condition")
			}
		}
	}
	plain, _ := json.Marshal(doc)

	ctx := context.Background()
	adm, err := madmin.New(strings.TrimPrefix(w.minio.Endpoint, "http://"), w.minio.AccessKey, w.minio.SecretKey, false)
	if err != nil {
		t.Fatal(err)
	}
	user, secret := "uploader-"+w.bucket, "uploader-secret-0123456789"
	if err := adm.AddCannedPolicy(ctx, user, plain); err != nil {
		t.Fatal(err)
	}
	if err := adm.AddUser(ctx, user, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{user}, User: user}); err != nil {
		t.Fatal(err)
	}

	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = user, secret
	// With RETENTION the uploader also tags the archive and looks up and writes the markers.
	env["RETENTION"] = "daily=35d monthly=25m"
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatalf("backup with the write-only policy: exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE") // read back with the root keys
	w.checkArchive("shop", m, dump)
	tags, err := w.s3().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &w.bucket, Key: aws.String("pgbackups/" + m.Key)})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "monthly" || m.Retention != "monthly" {
		t.Errorf("the first archive of the month: tags %+v (%v), manifest %q; want retention=monthly", tags, err, m.Retention)
	}
	marker := "pgbackups/_pgoffsite-retention/shop/DATABASE/monthly/" + m.BackupFinishedAt.UTC().Format("2006-01")
	if _, err := w.s3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &w.bucket, Key: aws.String(marker)}); err != nil {
		t.Errorf("marker %s: %v", marker, err)
	}

	up := s3.New(s3.Options{Region: w.minio.Region, BaseEndpoint: aws.String(w.minio.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, "")})
	key := aws.String("pgbackups/" + m.Key)
	_, errGet := up.GetObject(ctx, &s3.GetObjectInput{Bucket: &w.bucket, Key: key})
	_, errList := up.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &w.bucket})
	_, errDel := up.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.bucket, Key: key})
	for op, err := range map[string]error{"GetObject": errGet, "ListBucket": errList, "DeleteObject": errDel} {
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Errorf("%s with the uploader's keys: %v, want AccessDenied", op, err)
		}
	}
	if len(w.object(*key)) == 0 {
		t.Error("the archive is gone")
	}
}

func TestSetupBucketCommand(t *testing.T) {
	w := newWorld(t)
	env := map[string]string{"ARCHIVE_URL": "s3://" + w.bucket + "-safe/pgbackups", "AWS_REGION": w.minio.Region,
		"AWS_ACCESS_KEY_ID": w.minio.AccessKey, "AWS_SECRET_ACCESS_KEY": w.minio.SecretKey,
		"AWS_ENDPOINT_URL_S3": w.minio.Endpoint, "S3_FORCE_PATH_STYLE": "true"}
	// Without remote tiers MinIO refuses Glacier transitions, as S3-compatible stores do: keep the
	// expiry rules only (internal/bucket tests the transitions against a MinIO with tiers).
	env["BUCKET_TRANSITION_DAYS"] = "-1"
	code, out := w.run(env, "setup-bucket", "--dry-run")
	if code != ExitOK || !strings.Contains(out, "dry run: nothing was changed") {
		t.Fatalf("dry run: exit %d", code)
	}
	if _, err := w.s3().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(w.bucket + "-safe")}); err == nil {
		t.Fatal("the dry run created the bucket")
	}
	code, out = w.run(env, "setup-bucket")
	if code != ExitOK {
		t.Fatalf("setup: exit %d", code)
	}
	code, out = w.run(env, "setup-bucket")
	if code != ExitOK || !strings.Contains(out, "no changes") {
		t.Errorf("second run: exit %d, want no changes", code)
	}

	// RETENTION: the plan and its monthly cost before any change, one rule per class, and a
	// second run that changes nothing.
	env["RETENTION"] = "daily=35d weekly=13w monthly=25m yearly=7y"
	code, out = w.run(env, "setup-bucket", "--dry-run", "--archive-size", "5GiB")
	for _, want := range []string{"retention plan", "yearly: expire after 2562 days", "monthly storage estimate for one 5.00 GiB archive a day",
		"total", "pgoffsite-retention-daily", "dry run: nothing was changed"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("dry run with RETENTION: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if code, out = w.run(env, "setup-bucket"); code != ExitOK {
		t.Fatalf("setup with RETENTION: exit %d\n%s", code, out)
	}
	if code, out = w.run(env, "setup-bucket"); code != ExitOK || !strings.Contains(out, "no changes") {
		t.Errorf("second run with RETENTION: exit %d, want no changes\n%s", code, out)
	}
	lc, err := w.s3().GetBucketLifecycleConfiguration(context.Background(), &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(w.bucket + "-safe")})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int32{}
	for _, r := range lc.Rules {
		if r.Expiration != nil {
			ids[aws.ToString(r.ID)] = aws.ToInt32(r.Expiration.Days)
		} else {
			ids[aws.ToString(r.ID)] = 0
		}
	}
	want := map[string]int32{"pgoffsite-archive": 0, "pgoffsite-retention-daily": 35, "pgoffsite-retention-weekly": 91,
		"pgoffsite-retention-monthly": 775, "pgoffsite-retention-yearly": 2562}
	if len(ids) != len(want) {
		t.Errorf("rules: %v, want %v", ids, want)
	}
	for id, days := range want {
		if d, ok := ids[id]; !ok || d != days {
			t.Errorf("rule %s expires after %d days (present %v), want %d", id, d, ok, days)
		}
	}
	if code, out = w.run(env, "setup-bucket", "--archive-size", "lots"); code != ExitUsage || !strings.Contains(out, "--archive-size") {
		t.Errorf("--archive-size lots: exit %d\n%s", code, out)
	}
}

// check with RETENTION shows the plan and compares the bucket's lifecycle rules with it: a
// bucket set up before RETENTION fails the check, one set up with it passes.
func TestCheckComparesLifecycleWithRetention(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	env := w.env("shop")
	env["BUCKET_TRANSITION_DAYS"] = "-1" // this MinIO has no tiers
	if code, out := w.run(env, "setup-bucket"); code != ExitOK {
		t.Fatalf("setup-bucket: exit %d\n%s", code, out)
	}
	env["RETENTION"] = "daily=35d weekly=13w monthly=25m yearly=7y"
	env["RETENTION_TIMEZONE"] = "Europe/Berlin"
	code, out := w.run(env, "check")
	for _, want := range []string{`ok    retention: RETENTION="daily=35d weekly=13w monthly=25m yearly=7y", periods counted in Europe/Berlin`,
		"yearly: expire after 2562 days, stay in STANDARD (transitions are off", "the retention markers can be looked up",
		"FAIL  archive s3://" + w.bucket + "/pgbackups: the bucket's lifecycle rules do not match RETENTION (pgoffsite-archive, pgoffsite-retention-daily"} {
		if code != ExitFailed || !strings.Contains(out, want) {
			t.Errorf("check of a bucket set up before RETENTION: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	if code, out := w.run(env, "setup-bucket"); code != ExitOK {
		t.Fatalf("setup-bucket with RETENTION: exit %d\n%s", code, out)
	}
	code, out = w.run(env, "check")
	if !strings.Contains(out, "ok    archive s3://"+w.bucket+"/pgbackups: the lifecycle rules match RETENTION") || strings.Contains(out, "do not match") {
		t.Errorf("check after setup-bucket with RETENTION: exit %d:\n%s", code, out)
	}
}
