package gcsstore

import (
	"context"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The store against fake-gcs-server, each instance in a bucket of its own. The emulator keeps
// Google's preconditions (ifGenerationMatch=0) and resumable uploads; it enforces no IAM, so
// the uploader is given the reader's rights here.
func TestConformance(t *testing.T) {
	srv := testenv.StartFakeGCS(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			s := openTest(t, srv, srv.CreateBucket(t, "conformance"), "pg")
			return storetest.Instance{Store: s, Caps: s.WriterCaps(), Reader: s}
		},
		Want: storetest.Want{Close: true},
	})
}

// openTest opens bucket on srv through endpoint=, in chunks of 256 KiB so that the suite's
// larger objects take several.
func openTest(t *testing.T, srv *testenv.FakeGCS, bucket, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Bucket: bucket, Prefix: prefix, Endpoint: "http://" + srv.Host, ChunkSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMain(m *testing.M) { testenv.Main(m) }
