package s3store

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// server is one S3 implementation the suite runs against: a fresh bucket, a client of it, and
// the bucket's open multipart uploads.
type server struct {
	bucket  func(t *testing.T) string
	client  func(t *testing.T) *s3.Client
	uploads func(t testing.TB, bucket string) []string
}

// conformance runs the store contract's suite against srv: the uploader's store under a
// prefix, read back with a client that may read.
func conformance(t *testing.T, srv server, c Checksum) {
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			client, bucket := srv.client(t), srv.bucket(t)
			s := New(client, Options{Bucket: bucket, Prefix: "pre/fix", PartSize: MinPartSize, Checksum: c})
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: NewReader(client, bucket, "pre/fix"),
				Leftovers: func(t *testing.T) []string { return srv.uploads(t, bucket) }}
		},
		Want: storetest.Want{Markers: true, Abort: true, ConditionalWrites: true},
	})
}

// MinIO, the first S3 implementation.
func TestMinIOConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	conformance(t, server{func(t *testing.T) string { return m.CreateBucket(t, "conformance") }, func(t *testing.T) *s3.Client { return m.Client(t) }, m.IncompleteUploads}, "")
}

// The reader's side, what verify and status open: it reads and keeps records, nothing else.
func TestReaderCaps(t *testing.T) {
	c := NewReader(nil, "bucket", "pre/fix").Caps()
	if c.Reader == nil || c.Records == nil || c.Markers != nil || c.Remove != nil || c.Abort != nil || c.Stale != nil {
		t.Errorf("reader declares %+v, want Reader and Records alone", c)
	}
}

// checksum=auto against MinIO behind a stand-in that refuses the checksum headers as Cloudflare
// R2 does: every write falls back to Content-MD5 and the contract holds.
func TestChecksumRefusingConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	proxy := s3errtest.RefuseChecksums(t, m.Endpoint, s3errtest.R2Refusal)
	conformance(t, server{func(t *testing.T) string { return m.CreateBucket(t, "refusing") },
		func(t *testing.T) *s3.Client { return proxyClient(t, m, proxy.URL, ChecksumAuto) }, m.IncompleteUploads}, ChecksumAuto)
	if proxy.Refused() == 0 {
		t.Error("the stand-in refused nothing: the suite did not meet a refusal")
	}
}

// proxyClient is pgoffsite's own client (s3store.NewClient) of m's root keys through endpoint.
func proxyClient(t *testing.T, m *testenv.MinIO, endpoint string, c Checksum) *s3.Client {
	t.Helper()
	client, err := NewClient(context.Background(), ClientOptions{Endpoint: endpoint, Region: m.Region, ForcePathStyle: true,
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, Checksum: c, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	return client
}
