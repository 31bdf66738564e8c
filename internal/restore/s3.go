package restore

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/s3err"
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
		if s3err.Status(err) == http.StatusNotFound {
			// A HEAD's 404 has no body: a missing key and a missing bucket look alike.
			return "", fmt.Errorf("s3: no archive at s3://%s/%s: check --from (a key as the backup logged it; `pgoffsite status` names the newest) and the bucket's name in ARCHIVE_URL", s.Bucket, key)
		}
		return "", fmt.Errorf("s3: the archive s3://%s/%s cannot be read: %w", s.Bucket, key, err) // the cause says what to do
	}
	signed, err := s3.NewPresignClient(s.Client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		return "", fmt.Errorf("s3: presign s3://%s/%s: %w", s.Bucket, key, err)
	}
	return signed.URL, nil
}
