package s3store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// ProbeBytes is what ProbeMultipart sends: a first part of S3's minimum part size and a last
// part of one byte (the least two parts can be), and a few bytes of object.
const ProbeBytes = MinPartSize + 1

// ProbeError names the step of the probe a store refused.
type ProbeError struct {
	Step string
	Err  error
}

func (e *ProbeError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *ProbeError) Unwrap() error { return e.Err }

// ProbeMultipart does, small, what a backup's multipart upload does: it writes a few bytes at key
// (which must be new), then opens a multipart upload to the same key with the destination's
// checksum, uploads two parts (5 MiB of zeros and one byte) and completes it with If-None-Match:
// * — which a store that honours the condition refuses (412), because the key now holds the
// small object. The upload is then aborted: nothing of its 5 MiB stays, and the small object is
// all the probe leaves. honoured is false when the store completed over the object anyway (then
// the 5 MiB object is at key, for the bucket's lifecycle rules or its owner to remove) or
// rejected the header. A refused step comes back as a *ProbeError naming it.
func (s *Store) ProbeMultipart(ctx context.Context, key string) (honoured bool, err error) {
	full := s.key(key)
	loc := s.Location(key)
	small := []byte("written by `pgoffsite check`: its multipart probe completes over this, which If-None-Match must refuse; safe to delete\n")
	if err := s.putBytes(ctx, store.Object{Key: key, ContentType: "text/plain"}, small, loc); err != nil {
		return false, &ProbeError{"put object", err}
	}
	id, err := s.create(uploadRequest(ctx, "create multipart upload "+loc), store.Object{Key: key}, full)
	if err != nil {
		return false, &ProbeError{"create multipart upload", err}
	}
	completed := false
	defer func() {
		if !completed {
			if aerr := s.abort(ctx, full, id); aerr != nil && err == nil {
				err = &ProbeError{"abort multipart upload", aerr}
			}
		}
	}()
	// Zeros, as the part buffer the allocator hands out: no bytes of the process's are sent.
	var parts []types.CompletedPart
	for i, body := range [][]byte{make([]byte, MinPartSize), {0}} {
		p, err := s.uploadPart(uploadRequest(ctx, "probe part of "+loc), full, id, int32(i+1), body)
		if err != nil {
			return false, &ProbeError{fmt.Sprintf("upload part %d", i+1), err}
		}
		parts = append(parts, p)
	}
	_, err = s.client.CompleteMultipartUpload(uploadRequest(ctx, "complete multipart upload "+loc), &s3.CompleteMultipartUploadInput{
		Bucket: &s.o.Bucket, Key: &full, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		MpuObjectSize:   aws.Int64(ProbeBytes),
		IfNoneMatch:     aws.String("*"),
	})
	switch {
	case err == nil:
		completed = true
		return false, nil
	case s3err.Of(err) == s3err.PreconditionFailed:
		return true, nil
	case s3err.ConditionalUnsupported(err):
		return false, nil
	}
	return false, &ProbeError{"complete multipart upload (If-None-Match: *)", err}
}

// Checksum is the checksum the store's requests carry now: the destination's, or MD5 once auto
// fell back.
func (s *Store) Checksum() Checksum { return s.sums.current() }
