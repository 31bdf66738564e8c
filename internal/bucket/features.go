package bucket

import (
	"github.com/pgoffsite/pgoffsite/internal/s3err"

	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Support is what a bucket says about one of its safety features.
type Support int

const (
	Unknown     Support = iota // not readable with these keys (the uploader's cannot read it), or no answer
	On                         // the feature is set up
	Off                        // the store has it, the bucket does not use it
	Unsupported                // the store answers NotImplemented: it lacks the feature
)

func (s Support) String() string {
	return [...]string{"unknown", "on", "off", "unsupported"}[s]
}

// Features are the bucket settings that keep archives from being lost: versioning (an overwrite
// or delete keeps the old bytes), Object Lock (not even an administrator deletes them early) and
// lifecycle rules (old archives expire, incomplete uploads are cleaned up).
type Features struct {
	Versioning, ObjectLock, Lifecycle Support
}

// featureReader is what Inspect reads.
type featureReader interface {
	GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
	GetObjectLockConfiguration(context.Context, *s3.GetObjectLockConfigurationInput, ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
}

// Inspect reads what it can of the bucket's safety features. It changes nothing and never
// fails: a setting the keys may not read (the uploader's write-only keys read none) is Unknown,
// and so is one the store answers with an error other than "none set" or "not implemented".
func Inspect(ctx context.Context, client featureReader, bucket string) Features {
	b := aws.String(bucket)
	var f Features
	ver, err := client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
	switch {
	case err == nil && ver.Status == types.BucketVersioningStatusEnabled:
		f.Versioning = On
	case err == nil:
		f.Versioning = Off // never enabled, or suspended
	case s3err.Of(err) == s3err.NotImplemented:
		f.Versioning = Unsupported
	}

	lock, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: b})
	switch {
	case err == nil && lock.ObjectLockConfiguration != nil && lock.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled:
		f.ObjectLock = On
	case err == nil, s3err.Code(err) == "ObjectLockConfigurationNotFoundError":
		f.ObjectLock = Off
	case s3err.Of(err) == s3err.NotImplemented:
		f.ObjectLock = Unsupported
	}

	lc, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
	switch {
	case err == nil && len(lc.Rules) > 0:
		f.Lifecycle = On
	case err == nil, s3err.Code(err) == "NoSuchLifecycleConfiguration":
		f.Lifecycle = Off
	case s3err.Of(err) == s3err.NotImplemented:
		f.Lifecycle = Unsupported
	}
	return f
}

// String is for tests and debugging.
func (f Features) String() string {
	return fmt.Sprintf("versioning %s, object lock %s, lifecycle %s", f.Versioning, f.ObjectLock, f.Lifecycle)
}
