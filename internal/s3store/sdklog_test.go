package s3store

import (
	"bytes"
	"context"
	"strings"
	"testing"

	smithylog "github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// The SDK's own warnings land in the run's log with the target's fields, not as bare lines on
// stderr.
func TestSDKWarningsGoToTheRunsLog(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example-000000")
	client, err := NewClient(context.Background(), ClientOptions{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf).With().Str("app", "shop").Logger()
	l := smithylog.WithContext(log.WithContext(context.Background()), client.Options().Logger)
	l.Logf(smithylog.Warn, "Response has no supported checksum. Not validating response payload.")
	got := buf.String()
	for _, want := range []string{`"level":"warn"`, `"app":"shop"`, `"source":"aws-sdk"`, "no supported checksum"} {
		if !strings.Contains(got, want) {
			t.Errorf("the SDK's warning lacks %s: %q", want, got)
		}
	}
	// Without a request's context there is nothing to attach a line to, and nothing is printed.
	smithylog.WithContext(context.Background(), client.Options().Logger).Logf(smithylog.Warn, "ignored")
}
