package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// ErrArchived reports an object in a Glacier class that must be restored before it can be read.
var ErrArchived = errors.New("object is in an archive storage class and must be restored first")

// Reader reads archives back, for verification: it needs s3:GetObject and s3:ListBucket (see
// `pgoffsite policy --reader`), which the uploader's credentials do not have.
type Reader struct {
	client *s3.Client
	bucket string
	prefix string
}

// NewReader reads objects of bucket under prefix.
func NewReader(client *s3.Client, bucket, prefix string) *Reader {
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return &Reader{client: client, bucket: bucket, prefix: prefix}
}

func (r *Reader) full(key string) string {
	if r.prefix == "" {
		return key
	}
	return r.prefix + key
}

// List returns the keys (relative to the prefix) that start with sub.
func (r *Reader) List(ctx context.Context, sub string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(r.client, &s3.ListObjectsV2Input{Bucket: &r.bucket, Prefix: aws.String(r.full(sub))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list s3://%s/%s: %w", r.bucket, r.full(sub), err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key)[len(r.prefix):])
		}
	}
	return keys, nil
}

// Open streams an object; an object in GLACIER or DEEP_ARCHIVE not yet restored is ErrArchived.
func (r *Reader) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	out, err := r.client.GetObject(stall.WithLabel(ctx, "get object "+r.Location(key)), &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(r.full(key))})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidObjectState" {
			return nil, 0, fmt.Errorf("s3: get s3://%s/%s: %w", r.bucket, r.full(key), ErrArchived)
		}
		return nil, 0, fmt.Errorf("s3: get s3://%s/%s: %w", r.bucket, r.full(key), err)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// Location names key for people.
func (r *Reader) Location(key string) string { return "s3://" + r.bucket + "/" + r.full(key) }
