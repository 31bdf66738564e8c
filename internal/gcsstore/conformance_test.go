package gcsstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"

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

// The reader's credentials read back and keep the verification records.
func TestConformanceReader(t *testing.T) {
	srv := testenv.StartFakeGCS(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			s := openTest(t, srv, srv.CreateBucket(t, "reader"), "pg")
			return storetest.Instance{Store: s, Caps: s.ReaderCaps(), Reader: s}
		},
		Want: storetest.Want{Reader: true, Records: true, Close: true},
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

// With RETENTION an archive's class becomes its expiry date, as its Custom-Time, which the
// lifecycle setup-bucket prints deletes past; an object without a class has none.
func TestRetentionClassSetsCustomTime(t *testing.T) {
	srv := testenv.StartFakeGCS(t)
	policy, err := retention.Parse("daily=7d monthly=12m")
	if err != nil {
		t.Fatal(err)
	}
	bucket := srv.CreateBucket(t, "retention")
	s, err := Open(context.Background(), Options{Bucket: bucket, Prefix: "pg", Endpoint: "http://" + srv.Host, Retention: policy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	before := time.Now().UTC()
	for key, tags := range map[string]map[string]string{"a.dump": {"retention": "monthly"}, "b.dump": nil} {
		if err := s.Put(ctx, store.Object{Key: key, Size: 3, Tags: tags}, strings.NewReader("abc")); err != nil {
			t.Fatal(err)
		}
	}
	attrs, err := s.bucket.Object("pg/a.dump").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := before.AddDate(0, 0, 12*31)
	if d := attrs.CustomTime.Sub(want); d < -time.Minute || d > time.Minute {
		t.Errorf("Custom-Time %s, want about %s (12 months of 31 days from now)", attrs.CustomTime, want)
	}
	if attrs.Metadata["retention"] != "monthly" {
		t.Errorf("metadata %v", attrs.Metadata)
	}
	if attrs, err := s.bucket.Object("pg/b.dump").Attrs(ctx); err != nil || !attrs.CustomTime.IsZero() {
		t.Errorf("an object without a class: Custom-Time %v, %v", attrs.CustomTime, err)
	}
}
