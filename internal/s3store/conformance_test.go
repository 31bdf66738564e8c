package s3store

import (
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The uploader's store against MinIO, read back with a client that may read.
func TestMinIOConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			client, bucket := m.Client(t), m.CreateBucket(t, "conformance")
			s := New(client, Options{Bucket: bucket, Prefix: "pre/fix", PartSize: MinPartSize})
			return storetest.Instance{Store: s, Caps: s.Caps(), Reader: NewReader(client, bucket, "pre/fix"),
				Leftovers: func(t *testing.T) []string { return m.IncompleteUploads(t, bucket) }}
		},
		Want: storetest.Want{Markers: true, Abort: true, ConditionalWrites: true},
	})
}

// The reader's side, what verify and status open: it reads and keeps records, nothing else.
func TestReaderCaps(t *testing.T) {
	c := NewReader(nil, "bucket", "pre/fix").Caps()
	if c.Reader == nil || c.Records == nil || c.Markers != nil || c.Remove != nil || c.Abort != nil || c.Stale != nil {
		t.Errorf("reader declares %+v, want Reader and Records alone", c)
	}
}
