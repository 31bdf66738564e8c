package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// server is one S3 implementation the suite runs against: a fresh bucket, pgoffsite's own
// client of it with a checksum= setting, the bucket's open multipart uploads, and what the
// implementation was found to do beyond the contract.
type server struct {
	bucket  func(t *testing.T) string
	client  func(t *testing.T, c Checksum) *s3.Client
	uploads func(t testing.TB, bucket string) []string
	has     features
}

// features are what an S3 implementation does beyond the store contract's core, as the tests
// found it. Each is expected as recorded, both ways: a release that gains or loses one fails
// here, and docs/providers.md's table, which says the same to users, changes with it.
type features struct {
	// ConditionalWrites: If-None-Match: * on PutObject and on CompleteMultipartUpload refuses
	// a key that exists (412), so two writers of one key cannot both win.
	ConditionalWrites bool
	// Checksums is what it does with an x-amz-checksum-sha256 header.
	Checksums checksumHandling
	// Tagging: tags given when an object is created (x-amz-tagging) are kept and read back:
	// what the retention classes' lifecycle rules select on.
	Tagging bool
	// Lifecycle: a bucket lifecycle configuration is taken and read back (setup-bucket's
	// expiry of old classes and of incomplete uploads).
	Lifecycle bool
}

// checksumHandling is what a store does with S3's newer checksum headers.
type checksumHandling string

const (
	checksumsChecked checksumHandling = "checked" // a wrong one is refused, a right one taken
	checksumsIgnored checksumHandling = "ignored" // taken, right or wrong
	checksumsRefused checksumHandling = "refused" // the header itself is refused (checksum=md5 needed)
)

// conformance runs the store contract's suite against srv with checksum=c (the uploader's
// store under a prefix, read back with a client that may read), then checks srv's features.
func conformance(t *testing.T, srv server, c Checksum) {
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			client, bucket := srv.client(t, c), srv.bucket(t)
			s := New(client, Options{Bucket: bucket, Prefix: "pre/fix", PartSize: MinPartSize, Checksum: c})
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: NewReader(client, bucket, "pre/fix"),
				Leftovers: func(t *testing.T) []string { return srv.uploads(t, bucket) }}
		},
		Want: storetest.Want{Markers: true, Abort: true, ConditionalWrites: true},
	})
	t.Run("Features", func(t *testing.T) {
		client, bucket := srv.client(t, ChecksumNone), srv.bucket(t)
		found := features{
			ConditionalWrites: conditionalKept(t, client, bucket),
			Checksums:         checksumHeaders(t, client, bucket),
			Tagging:           taggingKept(t, client, bucket),
			Lifecycle:         lifecycleKept(t, client, bucket),
		}
		if found != srv.has {
			t.Errorf("found %+v, recorded %+v: correct the implementation's features and its row in docs/providers.md", found, srv.has)
		}
	})
}

// MinIO, the first S3 implementation.
func TestMinIOConformance(t *testing.T) {
	conformance(t, minIO(testenv.StartMinIO(t), ""), "")
}

// SeaweedFS's S3 gateway, a second S3 implementation.
func TestSeaweedFSConformance(t *testing.T) {
	conformance(t, seaweedFS(testenv.StartSeaweedFS(t)), "")
}

// seaweedFS is w as the suite's server.
func seaweedFS(w *testenv.SeaweedFS) server {
	return server{
		bucket: func(t *testing.T) string { return w.CreateBucket(t, "conformance") },
		client: func(t *testing.T, c Checksum) *s3.Client {
			return ownClient(t, w.Endpoint, w.Region, w.AccessKey, w.SecretKey, c)
		},
		uploads: w.IncompleteUploads,
		has:     features{ConditionalWrites: true, Checksums: checksumsChecked, Tagging: true, Lifecycle: true},
	}
}

// checksum=auto against MinIO behind a stand-in that refuses the checksum headers as Cloudflare
// R2 does: every write falls back to Content-MD5 and the contract holds.
func TestChecksumRefusingConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	proxy := s3errtest.RefuseChecksums(t, m.Endpoint, s3errtest.R2Refusal)
	srv := minIO(m, proxy.URL)
	// Lifecycle too: the SDK puts a checksum on PutBucketLifecycleConfiguration whatever the
	// client's setting (the operation requires one), and the stand-in refuses every such header.
	srv.has.Checksums, srv.has.Lifecycle = checksumsRefused, false
	conformance(t, srv, ChecksumAuto)
	if proxy.Refused() == 0 {
		t.Error("the stand-in refused nothing: the suite did not meet a refusal")
	}
}

// minIO is m as the suite's server, reached at endpoint ("": directly).
func minIO(m *testenv.MinIO, endpoint string) server {
	if endpoint == "" {
		endpoint = m.Endpoint
	}
	return server{
		bucket:  func(t *testing.T) string { return m.CreateBucket(t, "conformance") },
		client:  func(t *testing.T, c Checksum) *s3.Client { return proxyClient(t, m, endpoint, c) },
		uploads: m.IncompleteUploads,
		has:     features{ConditionalWrites: true, Checksums: checksumsChecked, Tagging: true, Lifecycle: true},
	}
}

// The reader's side, what verify and status open: it reads and keeps records, nothing else.
func TestReaderCaps(t *testing.T) {
	c := NewReader(nil, "bucket", "pre/fix").Caps()
	if c.Reader == nil || c.Records == nil || c.Markers != nil || c.Remove != nil || c.Abort != nil || c.Stale != nil {
		t.Errorf("reader declares %+v, want Reader and Records alone", c)
	}
}

// proxyClient is pgoffsite's own client (s3store.NewClient) of m's root keys through endpoint.
func proxyClient(t *testing.T, m *testenv.MinIO, endpoint string, c Checksum) *s3.Client {
	t.Helper()
	return ownClient(t, endpoint, m.Region, m.AccessKey, m.SecretKey, c)
}

// ownClient is pgoffsite's own client (s3store.NewClient) of endpoint with a key pair.
func ownClient(t *testing.T, endpoint, region, accessKey, secretKey string, c Checksum) *s3.Client {
	t.Helper()
	client, err := NewClient(context.Background(), ClientOptions{Endpoint: endpoint, Region: region, ForcePathStyle: true,
		AccessKeyID: accessKey, SecretAccessKey: secretKey, Checksum: c, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func probeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// conditionalKept writes a key, then writes it again with If-None-Match: * by PutObject and by
// a one-part multipart upload: true when both are refused with 412 and the first body is kept.
func conditionalKept(t *testing.T, client *s3.Client, bucket string) bool {
	ctx, key := probeCtx(t), "features/conditional"
	put := func(body string, cond bool) error {
		in := &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}
		if cond {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := client.PutObject(ctx, in)
		return err
	}
	if err := put("first", false); err != nil {
		t.Fatalf("put: %v", err)
	}
	refusedPut := preconditionFailed(put("second", true))

	up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("create multipart upload: %v", err)
	}
	part, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("third")})
	if err != nil {
		t.Fatalf("upload part: %v", err)
	}
	_, err = client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		IfNoneMatch: aws.String("*"), MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	refusedComplete := preconditionFailed(err)
	if err != nil {
		client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
	}

	kept := string(get(t, client, bucket, key)) == "first"
	if refusedPut != refusedComplete || refusedPut != kept {
		t.Errorf("If-None-Match: PutObject refused %v, CompleteMultipartUpload refused %v, first body kept %v: honoured in part", refusedPut, refusedComplete, kept)
	}
	return refusedPut && refusedComplete && kept
}

// checksumHeaders puts a body with its right SHA-256 in x-amz-checksum-sha256 and one with a wrong one.
func checksumHeaders(t *testing.T, client *s3.Client, bucket string) checksumHandling {
	ctx := probeCtx(t)
	put := func(key, body, sumOf string) error {
		sum := sha256.Sum256([]byte(sumOf))
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: strings.NewReader(body),
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		return err
	}
	right := put("features/right-sum", "body", "body")
	wrong := put("features/wrong-sum", "body", "another body")
	var api smithy.APIError
	switch {
	case right == nil && errors.As(wrong, &api) && (api.ErrorCode() == "BadDigest" || api.ErrorCode() == "XAmzContentChecksumMismatch"):
		return checksumsChecked
	case right == nil && wrong == nil:
		return checksumsIgnored
	case right != nil && wrong != nil:
		return checksumsRefused
	}
	t.Errorf("x-amz-checksum-sha256: the right one answered %v, the wrong one %v", right, wrong)
	return ""
}

// taggingKept creates an object with a tag and reads its tags back.
func taggingKept(t *testing.T, client *s3.Client, bucket string) bool {
	ctx, key := probeCtx(t), "features/tagged"
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("x"),
		Tagging: aws.String("pgoffsite-class=monthly")}); err != nil {
		t.Logf("put with a tag: %v", err)
		return false
	}
	out, err := client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Logf("get the tags: %v", err)
		return false
	}
	for _, tag := range out.TagSet {
		if aws.ToString(tag.Key) == "pgoffsite-class" && aws.ToString(tag.Value) == "monthly" {
			return true
		}
	}
	t.Logf("tags read back: %+v", out.TagSet)
	return false
}

// lifecycleKept sets a rule expiring a tagged class and incomplete uploads, and reads it back.
func lifecycleKept(t *testing.T, client *s3.Client, bucket string) bool {
	ctx := probeCtx(t)
	_, err := client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &bucket,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID: aws.String("daily"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("daily/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(7)},
		}}}})
	if err != nil {
		t.Logf("put a lifecycle rule: %v", err)
		return false
	}
	out, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket})
	if err != nil {
		t.Logf("get the lifecycle rules: %v", err)
		return false
	}
	if len(out.Rules) != 1 || out.Rules[0].Expiration == nil || aws.ToInt32(out.Rules[0].Expiration.Days) != 7 {
		t.Logf("rules read back: %s", fmt.Sprint(out.Rules))
		return false
	}
	return true
}

// preconditionFailed reports whether err is S3's 412 PreconditionFailed.
func preconditionFailed(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed"
}

// get reads key whole.
func get(t *testing.T, client *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := client.GetObject(probeCtx(t), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(out.Body); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b.Bytes()
}
