package s3store

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// Replace writes a small object, replacing one at the same key: the verifier's record beside
// an archive (the reader policy allows PutObject on that suffix alone). Archives themselves go
// through Store.Put, which never overwrites.
func (r *Reader) Replace(ctx context.Context, key string, body []byte) error {
	_, err := r.client.PutObject(stall.WithLabel(ctx, "put object "+r.Location(key)), &s3.PutObjectInput{
		Bucket: &r.bucket, Key: aws.String(r.full(key)), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("s3: put s3://%s/%s: %w", r.bucket, r.full(key), err)
	}
	return nil
}
