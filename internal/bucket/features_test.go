package bucket

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// TestInspectAnswers: each way a store answers maps to one Support, and nothing is written.
func TestInspectAnswers(t *testing.T) {
	ctx := context.Background()

	f, client := newFakeS3(t, "eu-west-1", true)
	if got, want := Inspect(ctx, client, "b"), (Features{Off, Off, Off}); got != want {
		t.Errorf("nothing set: %v, want %v", got, want)
	}
	f.docs["versioning"] = []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)
	f.docs["object-lock"] = []byte(`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`)
	f.docs["lifecycle"] = []byte(`<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><Expiration><Days>9</Days></Expiration></Rule></LifecycleConfiguration>`)
	if got, want := Inspect(ctx, client, "b"), (Features{On, On, On}); got != want {
		t.Errorf("all set: %v, want %v", got, want)
	}
	f.docs["versioning"] = []byte(`<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`)
	if got := Inspect(ctx, client, "b"); got.Versioning != Off {
		t.Errorf("suspended versioning: %v", got)
	}

	f, client = newFakeS3(t, "auto", true)
	f.notImpl["object-lock"], f.notImpl["lifecycle"], f.notImpl["versioning"] = true, true, true
	if got, want := Inspect(ctx, client, "b"), (Features{Unsupported, Unsupported, Unsupported}); got != want {
		t.Errorf("store without them: %v, want %v", got, want)
	}

	f, client = newFakeS3(t, "eu-west-1", true)
	f.denied = true
	if got, want := Inspect(ctx, client, "b"), (Features{Unknown, Unknown, Unknown}); got != want {
		t.Errorf("uploader's keys: %v, want %v", got, want)
	}
	if f.writes() != 0 {
		t.Errorf("Inspect wrote %d times", f.writes())
	}
}

// TestInspectOnMinIO: what a real store answers for a bare bucket, and for one with versioning,
// lifecycle rules and Object Lock.
func TestInspectOnMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	root := m.Client(t)
	ctx := context.Background()

	bare := m.CreateBucket(t, "inspect")
	if got, want := Inspect(ctx, root, bare), (Features{Off, Off, Off}); got != want {
		t.Errorf("bare bucket: %v, want %v", got, want)
	}

	locked := "pgoffsite-inspect-lock-" + randHex(4)
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &locked, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &locked,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID: aws.String("expire"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(400)}}}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := Inspect(ctx, root, locked), (Features{On, On, On}); got != want {
		t.Errorf("locked bucket with rules: %v, want %v", got, want)
	}
}
