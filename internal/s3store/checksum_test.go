package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Every checksum= value uploads a multipart object (three parts) and a single one that MinIO
// takes and reads back whole; through a stand-in refusing the checksum headers, auto falls back
// once, warned once, and an explicit strong checksum fails naming checksum=md5, leaving no upload.
func TestChecksumModes(t *testing.T) {
	m := testenv.StartMinIO(t)
	data := checksumModes(t, minIO(m, ""))
	put := func(t *testing.T, s *Store, ctx context.Context, key string, size int64) error {
		return s.Put(ctx, store.Object{Key: key, Size: size}, bytes.NewReader(data[:max(size, 0)]))
	}

	for _, how := range s3errtest.Refusals {
		t.Run("refused/"+how.Name, func(t *testing.T) {
			proxy := s3errtest.RefuseChecksums(t, m.Endpoint, how)
			bucket := m.CreateBucket(t, "refused")
			var logged bytes.Buffer
			ctx := zerolog.New(&logged).WithContext(context.Background())
			s := New(proxyClient(t, m, proxy.URL, ChecksumAuto), Options{Bucket: bucket, PartSize: MinPartSize, Concurrency: 3})
			for _, key := range []string{"a", "b"} {
				if err := put(t, s, ctx, key, int64(len(data))); err != nil {
					t.Fatalf("auto through the stand-in: %v", err)
				}
			}
			if n := strings.Count(logged.String(), ChecksumRefusedMessage); n != 1 || s.Checksum() != ChecksumMD5 || proxy.Refused() == 0 {
				t.Errorf("%d warnings, checksum now %s, %d refused: want 1, md5, some\n%s", n, s.Checksum(), proxy.Refused(), logged.String())
			}

			strict := New(proxyClient(t, m, proxy.URL, ChecksumSHA256), Options{Bucket: bucket, PartSize: MinPartSize, Checksum: ChecksumSHA256})
			for key, size := range map[string]int64{"strict-multi": int64(len(data)), "strict-single": 10} {
				err := put(t, strict, context.Background(), key, size)
				if err == nil || !strings.Contains(err.Error(), "set checksum=md5") || !strings.Contains(err.Error(), "checksum=sha256") {
					t.Errorf("%s with checksum=sha256 through the stand-in: %v, want a failure naming checksum=sha256 and checksum=md5", key, err)
				}
				if ups := m.IncompleteUploadsOf(t, bucket, key); len(ups) != 0 {
					t.Errorf("%s: uploads left open: %v", key, ups)
				}
			}
		})
	}
}

// Every checksum= value against SeaweedFS, the second S3 implementation.
func TestSeaweedFSChecksumModes(t *testing.T) {
	checksumModes(t, seaweedFS(testenv.StartSeaweedFS(t)))
}

// checksumModes uploads, with every checksum= value, a multipart object (three parts) and a
// single one to srv and reads each back whole; it returns the data written.
func checksumModes(t *testing.T, srv server) []byte {
	data := make([]byte, 2*MinPartSize+123)
	rand.Read(data)
	for _, c := range []Checksum{ChecksumAuto, ChecksumSHA256, ChecksumCRC32C, ChecksumMD5, ChecksumNone} {
		t.Run(string(c), func(t *testing.T) {
			bucket := srv.bucket(t)
			s := New(srv.client(t, c), Options{Bucket: bucket, PartSize: MinPartSize, Checksum: c})
			for key, size := range map[string]int64{"multi": int64(len(data)), "single": 1000} {
				if err := s.Put(context.Background(), store.Object{Key: key, Size: size}, bytes.NewReader(data[:size])); err != nil {
					t.Fatalf("put %s: %v", key, err)
				}
				if got := get(t, srv.client(t, ChecksumNone), bucket, key); !bytes.Equal(got, data[:size]) {
					t.Errorf("%s: read back %d bytes, not the %d written", key, len(got), size)
				}
			}
		})
	}
	return data
}
