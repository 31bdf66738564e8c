package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Signer signs, for an hour, a download of an archive in an S3 bucket, after checking that
// these credentials can read it.
type S3Signer struct {
	Client *s3.Client
	Bucket string
	Prefix string // ARCHIVE_URL's path: the archives' keys begin with it
}

func (s S3Signer) SignedURL(ctx context.Context, from string) (string, error) {
	key := from
	if s.Prefix != "" {
		key = s.Prefix + "/" + key
	}
	if _, err := s.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		return "", fmt.Errorf("s3: the archive s3://%s/%s cannot be read with these credentials (use the reader's, see `pgoffsite policy --reader`): %w", s.Bucket, key, err)
	}
	signed, err := s3.NewPresignClient(s.Client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		return "", fmt.Errorf("s3: presign s3://%s/%s: %w", s.Bucket, key, err)
	}
	return signed.URL, nil
}
