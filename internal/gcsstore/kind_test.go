package gcsstore

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/preflight/preflighttest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// check writes the probe where a backup writes, reached through endpoint= or, as Google's tools
// do, STORAGE_EMULATOR_HOST; a missing bucket fails naming the command that creates it.
func TestCheck(t *testing.T) {
	srv := testenv.StartFakeGCS(t)
	bucket := srv.CreateBucket(t, "check")
	env := spec.Env{Getenv: func(string) string { return "" }, PartSize: 8 << 20, Parts: 2}
	run := func(a spec.Archive) (string, int) {
		var out bytes.Buffer
		c := &preflighttest.Lines{W: &out}
		Kind.Check(context.Background(), c, env, []spec.Archive{a}, 0)
		return out.String(), c.Failed
	}
	viaEndpoint := Settings{Bucket: bucket, Prefix: "pg", Endpoint: "http://" + srv.Host, CredentialsVar: DefaultCredentialsVar}.Archive()
	if out, failed := run(viaEndpoint); failed != 0 || !strings.Contains(out, "ok    archive is writable: wrote gs://"+bucket+"/pg/_pgoffsite-check/") {
		t.Errorf("endpoint=: %d failed\n%s", failed, out)
	}
	t.Setenv(EmulatorHostVar, srv.Host)
	viaEmulator := Settings{Bucket: bucket, Prefix: "emu", CredentialsVar: DefaultCredentialsVar}.Archive()
	if out, failed := run(viaEmulator); failed != 0 || !strings.Contains(out, "wrote gs://"+bucket+"/emu/_pgoffsite-check/") {
		t.Errorf("STORAGE_EMULATOR_HOST: %d failed\n%s", failed, out)
	}
	missing := Settings{Bucket: "no-such-bucket", Endpoint: "http://" + srv.Host, CredentialsVar: DefaultCredentialsVar}.Archive()
	if out, failed := run(missing); failed != 1 || !strings.Contains(out, "bucket gs://no-such-bucket does not exist (404)") ||
		!strings.Contains(out, "gcloud storage buckets create gs://no-such-bucket") {
		t.Errorf("missing bucket: %d failed\n%s", failed, out)
	}
	if got := Kind.UploadMemory(8<<20, 4); got != 8<<20 {
		t.Errorf("UploadMemory = %d, want one chunk", got)
	}
}
