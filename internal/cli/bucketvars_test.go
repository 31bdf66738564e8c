package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/config"
)

// A mistake in a BUCKET_ variable stops setup-bucket with exit 2, naming every bad variable and
// the fix, before any request reaches S3. (The old code fell back to the default silently.)
func TestSetupBucketBadVariables(t *testing.T) {
	var requests atomic.Int64
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer s3.Close()
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range map[string]string{"ARCHIVE_URL": "s3://acme-archive/pg", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-example-key", "AWS_ENDPOINT_URL_S3": s3.URL,
		"S3_FORCE_PATH_STYLE": "true", "BUCKET_EXPIRE_DAYS": "forever", "BUCKET_TRANSITION_CLASS": "COLD"} {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := testRun(context.Background(), []string{"setup-bucket", "--dry-run"}, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	if code != ExitUsage {
		t.Errorf("exit %d, want %d\n%s", code, ExitUsage, out)
	}
	for _, want := range []string{"BUCKET_EXPIRE_DAYS:", `"forever" is not a whole number of days`, "0 to keep archives forever",
		"BUCKET_TRANSITION_CLASS:", "GLACIER_IR"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached S3", n)
	}
}

// config's defaults for the BUCKET_ variables are setup-bucket's own.
func TestBucketVarDefaultsMatchSetupBucket(t *testing.T) {
	want := map[string]string{
		"BUCKET_TRANSITION_DAYS":        strconv.Itoa(bucket.DefaultTransitionDays),
		"BUCKET_TRANSITION_CLASS":       bucket.DefaultTransitionClass,
		"BUCKET_DEEP_ARCHIVE_DAYS":      "0",
		"BUCKET_EXPIRE_DAYS":            strconv.Itoa(bucket.DefaultExpireDays),
		"BUCKET_NONCURRENT_EXPIRE_DAYS": strconv.Itoa(bucket.DefaultNoncurrentExpireDays),
		"BUCKET_OBJECT_LOCK_DAYS":       "0",
		"BUCKET_OBJECT_LOCK_MODE":       "",
	}
	seen := 0
	for _, d := range config.Describe() {
		if w, ok := want[d.Name]; ok {
			seen++
			if d.Default != w {
				t.Errorf("%s: default %q in config, %q in setup-bucket", d.Name, d.Default, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("config describes %d of the %d BUCKET_ variables", seen, len(want))
	}
}
