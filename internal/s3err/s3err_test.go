package s3err

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// answer is an error as the SDK returns it for an S3 answer: the API error wrapped in the
// response's status.
func answer(status int, code, msg string) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: msg}
	if code == "" {
		inner = errors.New(msg)
	}
	return fmt.Errorf("operation PutObject: %w", &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner},
	})
}

func TestOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Class
	}{
		{nil, Other},
		{errors.New("dial tcp: connection refused"), Other},
		{answer(403, "AccessDenied", "Access Denied"), Denied},
		{answer(403, "", "forbidden"), Denied},
		{answer(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist"), BadCredentials},
		{answer(403, "SignatureDoesNotMatch", "signature"), BadCredentials},
		{answer(404, "NoSuchBucket", "The specified bucket does not exist"), NoSuchBucket},
		{answer(301, "PermanentRedirect", "endpoint"), WrongRegion},
		{answer(301, "", ""), WrongRegion},
		{answer(501, "NotImplemented", "A header you provided implies functionality that is not implemented"), NotImplemented},
		{answer(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"), PreconditionFailed},
		{answer(409, "ConditionalRequestConflict", "conflict"), Conflict},
		{answer(500, "InternalError", "try again"), Other},
	} {
		if got := Of(c.err); got != c.want {
			t.Errorf("Of(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if Code(answer(403, "AccessDenied", "")) != "AccessDenied" || Status(answer(403, "AccessDenied", "")) != 403 {
		t.Error("code or status not read")
	}
}

func TestConditionalUnsupported(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{answer(501, "NotImplemented", ""), true},
		{answer(400, "InvalidArgument", "If-None-Match is not supported"), true},
		{answer(400, "InvalidArgument", "bad part"), false},
		{answer(412, "PreconditionFailed", "If-None-Match failed"), false},
		{answer(409, "ConditionalRequestConflict", "If-None-Match conflict"), false},
		{answer(403, "AccessDenied", ""), false},
	} {
		if got := ConditionalUnsupported(c.err); got != c.want {
			t.Errorf("ConditionalUnsupported(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Each fix names the variable that sets right what the class reports.
func TestFixNamesTheVariable(t *testing.T) {
	for _, c := range []struct {
		class Class
		v     Vars
		want  string
	}{
		{Denied, Vars{}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{Denied, Vars{Keys: "B2"}, "B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY"},
		{BadCredentials, Vars{Keys: "B2"}, "B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY"},
		{WrongRegion, Vars{}, "AWS_REGION"},
		{NoSuchBucket, Vars{}, "ARCHIVE_URL"},
	} {
		if got := Fix(c.class, c.v); !strings.Contains(got, c.want) {
			t.Errorf("Fix(%d, %+v) = %q, lacks %s", c.class, c.v, got, c.want)
		}
	}
	for _, c := range []Class{Other, NotImplemented, PreconditionFailed, Conflict} {
		if got := Fix(c, Vars{}); got != "" {
			t.Errorf("Fix(%d) = %q, want none", c, got)
		}
	}
}
