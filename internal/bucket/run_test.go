package bucket

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// Run says what it would change, changes nothing on a dry run, changes it otherwise, and finds
// nothing left to do the second time.
func TestRunDryThenApplyThenNothing(t *testing.T) {
	f, client := newFakeS3(t, "us-east-1", true)
	o := Options{Bucket: "archive-bucket", Region: "us-east-1"}
	run := func(dry bool) string {
		var out strings.Builder
		if err := Run(context.Background(), &out, client, o, RunOptions{Name: "s3://archive-bucket/pg", DryRun: dry}); err != nil {
			t.Fatalf("Run(dry %v): %v", dry, err)
		}
		return out.String()
	}
	out := run(true)
	for _, want := range []string{"s3://archive-bucket/pg:\n", "bucket archive-bucket: versioning: ", "dry run: nothing was changed\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run said %q, want it to contain %q", out, want)
		}
	}
	if n := f.writes(); n != 0 {
		t.Fatalf("a dry run sent %d write requests", n)
	}
	if out := run(false); !strings.HasSuffix(out, "done; run it again any time: it changes only what differs\n") {
		t.Errorf("run said %q, want it to end with done", out)
	}
	if f.writes() == 0 {
		t.Fatal("the run changed nothing")
	}
	if out := run(false); out != "s3://archive-bucket/pg: no changes: the bucket is already set up\n" {
		t.Errorf("second run said %q", out)
	}
}

// Off AWS, Run warns that the lifecycle rules name Amazon's storage classes, and with RETENTION
// it prints the plan of each class and, given an archive's size, its monthly cost.
func TestRunSaysWhatRetentionAndTheStoreMean(t *testing.T) {
	_, client := newFakeS3(t, "us-east-1", true)
	policy, err := retention.Parse("daily=35d monthly=25m")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	o := Options{Bucket: "archive-bucket", Region: "us-east-1", Retention: policy}
	err = Run(context.Background(), &out, client, o, RunOptions{Name: "s3://archive-bucket", DryRun: true, ArchiveBytes: 5 << 30, OffAWSHost: "minio.example:9000"})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"warning: s3://archive-bucket is not on AWS (minio.example:9000): the lifecycle rules move archives to STANDARD_IA, GLACIER and DEEP_ARCHIVE (by retention class)",
		"retention plan (RETENTION=",
		"  archives made before RETENTION carry no tag",
		"monthly storage estimate for one 5.00 GiB archive a day",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Run said:\n%s\nwant it to contain %q", got, want)
		}
	}

	out.Reset()
	o.Retention, o.TransitionDays = retention.Policy{}, -1
	if err := Run(context.Background(), &out, client, o, RunOptions{Name: "s3://archive-bucket", DryRun: true, ArchiveBytes: 1 << 30, OffAWSHost: "minio.example:9000"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "not on AWS") || !strings.HasPrefix(got, "--archive-size: the cost estimate is per RETENTION class, and RETENTION is not set\n") {
		t.Errorf("without transitions or RETENTION Run said:\n%s", got)
	}
}

// On a real S3 store (MinIO): a dry run changes nothing, a run sets the bucket up and passes on
// the store's warnings, and a second run finds nothing to change.
func TestRunOnMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	root := m.Client(t)
	name := m.CreateBucket(t, "pgoffsite-run")
	o := Options{Bucket: name, Prefix: "pg", Region: m.Region, TransitionDays: -1, ExpireDays: 90}
	r := RunOptions{Name: "s3://" + name + "/pg", DryRun: true, OffAWSHost: "127.0.0.1"}
	run := func() string {
		t.Helper()
		var out strings.Builder
		if err := Run(context.Background(), &out, root, o, r); err != nil {
			t.Fatalf("Run: %v\n%s", err, out.String())
		}
		return out.String()
	}

	before := readBucket(t, root, name)
	if out := run(); !strings.HasSuffix(out, "dry run: nothing was changed\n") || strings.Contains(out, "not on AWS") {
		t.Errorf("dry run said:\n%s", out)
	}
	if after := readBucket(t, root, name); !equalJSON(before, after) {
		t.Errorf("a dry run changed the bucket:\nbefore %+v\nafter  %+v", before, after)
	}

	r.DryRun = false
	out := run()
	for _, want := range []string{"bucket " + name + ": versioning: ", "warning: " + warnDropsAbort + "\n", "done; run it again any time"} {
		if !strings.Contains(out, want) {
			t.Errorf("run said:\n%s\nwant it to contain %q", out, want)
		}
	}
	if rb := readBucket(t, root, name); rb.Versioning != "Enabled" || rb.Encryption != SSES3 {
		t.Errorf("after the run: versioning %q, encryption %q", rb.Versioning, rb.Encryption)
	}
	if out := run(); out != r.Name+": no changes: the bucket is already set up\n" {
		t.Errorf("second run said:\n%s", out)
	}
}
