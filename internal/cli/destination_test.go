package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The redactor scrubs the key pair a destination's keys=NAME names.
func TestRedactorKnowsNamedKeys(t *testing.T) {
	t.Setenv("B2_ACCESS_KEY_ID", "b2-id-0123")
	t.Setenv("B2_SECRET_ACCESS_KEY", "b2-secret")
	b2 := s3store.Settings{Bucket: "b", Keys: "B2"}.Archive()
	withB2 := config.Config{Archives: []spec.Archive{{Scheme: "s3"}, b2}}
	if got := newRedactor(withB2).Scrub("signed with b2-secret by b2-id-0123"); strings.Contains(got, "b2-secret") || strings.Contains(got, "b2-id") {
		t.Errorf("the redactor leaves the keys=B2 pair: %q", got)
	}
}

// TestPolicyDestinationFlag: the printed policy is the chosen destination's; a choice that is
// not one is a usage error.
func TestPolicyDestinationFlag(t *testing.T) {
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ARCHIVE_URL", "s3://archive-bucket/db/prod")
	for _, args := range [][]string{{"policy"}, {"policy", "--destination", "1"}, {"policy", "--destination", "s3://archive-bucket/db/prod"}} {
		var out, errs bytes.Buffer
		if code := testRun(context.Background(), args, &out, &errs); code != ExitOK || !strings.Contains(out.String(), `"arn:aws:s3:::archive-bucket/db/prod/*"`) {
			t.Errorf("%q: exit %d\n%s%s", args, code, out.String(), errs.String())
		}
	}
	var out, errs bytes.Buffer
	if code := testRun(context.Background(), []string{"policy", "--destination", "2"}, &out, &errs); code != ExitUsage ||
		!strings.Contains(errs.String(), "--destination 2: ARCHIVE_URL names 1 destination(s); the S3 ones are\n  --destination 1   (or --destination s3://archive-bucket/db/prod)") {
		t.Errorf("--destination 2: exit %d\n%s", code, errs.String())
	}
}

// TestSetupBucketOffAWSWarnsOfGlacier: setup-bucket for a destination that is not on AWS says
// that its transitions go to an Amazon storage class, and how to leave them out.
func TestSetupBucketOffAWSWarnsOfGlacier(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range map[string]string{"ARCHIVE_URL": "s3://" + m.CreateBucket(t, "offaws") + "/pg", "AWS_REGION": m.Region,
		"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey, "AWS_ENDPOINT_URL_S3": m.Endpoint, "S3_FORCE_PATH_STYLE": "true"} {
		t.Setenv(k, v)
	}
	var out, errs bytes.Buffer
	code := testRun(context.Background(), []string{"setup-bucket", "--dry-run"}, &out, &errs)
	want := "the lifecycle rules move archives to GLACIER, an Amazon S3 storage class most S3-compatible providers lack; if the store refuses them, run with --transition-days -1"
	if code != ExitOK || !strings.Contains(out.String(), want) {
		t.Errorf("exit %d\n%s%s", code, out.String(), errs.String())
	}
	out.Reset()
	if testRun(context.Background(), []string{"setup-bucket", "--dry-run", "--transition-days", "-1"}, &out, &errs); strings.Contains(out.String(), "GLACIER") {
		t.Errorf("warned without transitions:\n%s", out.String())
	}
}

// TestBucketCommandsPerDestination: with two S3 destinations on two servers with different
// keys, policy and setup-bucket refuse to guess, and --destination picks the one they work on,
// reached with its own endpoint and keys.
func TestBucketCommandsPerDestination(t *testing.T) {
	first, second := testenv.StartMinIO(t), testenv.StartOwnMinIO(t)
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	b1, b2 := first.CreateBucket(t, "dest-one"), "pgoffsite-dest-two-"+fmt.Sprint(os.Getpid())
	env := map[string]string{
		"ARCHIVE_URL": "s3://" + b1 + "/pg s3://" + b2 + "/db?endpoint=" + second.Endpoint + "&region=" + second.Region + "&path_style=true&keys=SECOND",
		"AWS_REGION":  first.Region, "AWS_ACCESS_KEY_ID": first.AccessKey, "AWS_SECRET_ACCESS_KEY": first.SecretKey,
		"AWS_ENDPOINT_URL_S3": first.Endpoint, "S3_FORCE_PATH_STYLE": "true",
		"SECOND_ACCESS_KEY_ID": second.AccessKey, "SECOND_SECRET_ACCESS_KEY": second.SecretKey,
		"BUCKET_TRANSITION_DAYS": "-1",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := testRun(context.Background(), args, &out, &errs)
		s := out.String() + errs.String()
		t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, s)
		if strings.Contains(s, second.SecretKey) || strings.Contains(s, first.SecretKey) {
			t.Errorf("a secret key in the output of %q", args)
		}
		return code, s
	}
	list := "--destination 1   (or --destination s3://" + b1 + "/pg)\n  --destination 2   (or --destination s3://" + b2 + "/db)"
	for _, cmd := range []string{"policy", "setup-bucket"} {
		if code, out := run(cmd); code != ExitUsage || !strings.Contains(out, "ARCHIVE_URL names 2 S3 destinations: say which with one of\n  "+list) {
			t.Errorf("%s without --destination: exit %d", cmd, code)
		}
	}
	if code, out := run("policy", "--destination", "2"); code != ExitOK || !strings.Contains(out, `"arn:aws:s3:::`+b2+`/db/*"`) || strings.Contains(out, b1) {
		t.Errorf("policy --destination 2: exit %d", code)
	}
	if code, out := run("setup-bucket", "--destination", "s3://"+b2+"/db"); code != ExitOK || !strings.Contains(out, "s3://"+b2+"/db:") {
		t.Errorf("setup-bucket --destination s3://%s/db: exit %d", b2, code)
	}
	// Made on the second server, with its keys; the first server has no such bucket.
	if _, err := second.Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &b2}); err != nil {
		t.Errorf("the bucket is not on the second server: %v", err)
	}
	if _, err := first.Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &b2}); err == nil {
		t.Error("the bucket was made on the first server")
	}
}

// TestBackupToSecondProvider: a backup lands byte for byte on a second S3 server reached with
// its destination's own endpoint, region and keys, beside the one the AWS variables name.
func TestBackupToSecondProvider(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 200)
	second := testenv.StartOwnMinIO(t)
	b2 := second.CreateBucket(t, "second")
	env := w.env("shop")
	env["ARCHIVE_URL"] += " s3://" + b2 + "/copy?endpoint=" + second.Endpoint + "&region=" + second.Region + "&path_style=true&keys=SECOND"
	env["SECOND_ACCESS_KEY_ID"], env["SECOND_SECRET_ACCESS_KEY"] = second.AccessKey, second.SecretKey
	if code, out := w.run(env, "backup"); code != ExitOK || strings.Contains(out, second.SecretKey) {
		t.Fatalf("backup: exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	got, err := second.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &b2, Key: aws.String("copy/" + m.Key)})
	if err != nil {
		t.Fatalf("the second copy: %v", err)
	}
	defer got.Body.Close()
	copyBytes, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copyBytes, dump) {
		t.Errorf("the second copy differs: %d bytes, want %d", len(copyBytes), len(dump))
	}
}
