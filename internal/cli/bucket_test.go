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
	code, policy := w.run(map[string]string{"ARCHIVE_URL": env["ARCHIVE_URL"], "AWS_REGION": env["AWS_REGION"]}, "policy")
	if code != ExitOK || !strings.Contains(policy, `"s3:PutObject"`) || strings.Contains(policy, "GetObject") {
		t.Fatalf("policy: exit %d\n%s", code, policy)
	}

	// The test MinIO speaks plain http, so the policy's TLS-only condition would deny everything;
	// internal/bucket checks the policy with that condition against a MinIO serving TLS.
	var doc map[string]any
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatal(err)
	}
	for _, st := range doc["Statement"].([]any) {
		delete(st.(map[string]any), "Condition")
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
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatalf("backup with the write-only policy: exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE") // read back with the root keys
	w.checkArchive("shop", m, dump)

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
}
