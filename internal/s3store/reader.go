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
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// ErrArchived reports an object in a Glacier class that must be restored before it can be read.
var ErrArchived = store.ErrArchived

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

// Caps are what the reader's credentials allow: reading, and keeping verification records.
func (r *Reader) Caps() store.Caps { return store.Caps{Reader: r, Records: r} }
