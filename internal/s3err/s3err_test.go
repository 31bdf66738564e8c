package s3err

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	aws2 "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
		{answer(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-1'"), WrongRegion},
		{answer(503, "SlowDown", "Please reduce your request rate."), Throttled},
		{&net.DNSError{Err: "no such host", Name: "x.invalid"}, UnknownHost},
		{x509.UnknownAuthorityError{}, Untrusted},
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

// Each class's explanation names the destination, the variable that sets it right and the
// command that helps; the classes the code handles itself are left as they are.
func TestExplainNamesTheVariableAndCommand(t *testing.T) {
	aws := Dest{Label: "s3://acme/pg", Region: "eu-west-1"}
	b2 := Dest{Label: "s3://acme/pg?keys=B2", Keys: "B2", Region: "eu-central-003", RegionParam: true, Endpoint: "endpoint= of s3://acme/pg?keys=B2 in ARCHIVE_URL"}
	for _, c := range []struct {
		err   error
		d     Dest
		op    string
		input any
		want  []string
	}{
		{answer(403, "AccessDenied", "Access Denied"), aws, "PutObject", nil,
			[]string{"may not write", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "`pgoffsite policy` prints"}},
		{answer(403, "AccessDenied", "Access Denied"), b2, "GetObject", nil,
			[]string{"uploader's", "B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY", "`pgoffsite policy --reader`"}},
		{answer(403, "AccessDenied", "Access Denied"), aws, "ListObjectsV2", &s3.ListObjectsV2Input{Prefix: aws2.String("pg/_pgoffsite-retention/shop/")},
			[]string{"may not write", "`pgoffsite policy` prints"}},
		{answer(403, "AccessDenied", "Access Denied"), aws, "ListObjectsV2", &s3.ListObjectsV2Input{Prefix: aws2.String("pg/shop/")},
			[]string{"may not read", "`pgoffsite policy --reader`"}},
		{answer(403, "AccessDenied", "Access Denied"), aws, "PutBucketVersioning", nil,
			[]string{"configure the bucket", "`pgoffsite setup-bucket` with the bucket owner's keys"}},
		{answer(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."), b2, "PutObject", nil,
			[]string{"does not know the access key ID", "B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY"}},
		{answer(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."), aws, "PutObject", nil,
			[]string{"secret access key does not belong", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{answer(404, "NoSuchBucket", "The specified bucket does not exist"), aws, "PutObject", nil,
			[]string{"does not exist", "ARCHIVE_URL", "`pgoffsite setup-bucket`"}},
		{answer(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-2'"), aws, "PutObject", nil,
			[]string{"in us-east-2, not eu-west-1", "set AWS_REGION (or region= of this destination in ARCHIVE_URL) to us-east-2"}},
		{answer(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint."), b2, "PutObject", nil,
			[]string{"not in eu-central-003", "set region= of s3://acme/pg?keys=B2 in ARCHIVE_URL"}},
		{fmt.Errorf("send: %w", &net.DNSError{Err: "no such host", Name: "acme.s3.eu-west1.amazonaws.com", IsNotFound: true}), Dest{Label: "s3://acme/pg", Region: "eu-west1"}, "PutObject", nil,
			[]string{"does not resolve", `check AWS_REGION`, `it was "eu-west1"`}},
		{fmt.Errorf("send: %w", &net.DNSError{Err: "no such host", Name: "s3.example.invalid"}), b2, "PutObject", nil,
			[]string{"does not resolve", "check the host in endpoint= of s3://acme/pg?keys=B2 in ARCHIVE_URL"}},
		{fmt.Errorf("send: %w", x509.UnknownAuthorityError{}), b2, "PutObject", nil,
			[]string{"TLS handshake", "certificate signed by unknown authority", "endpoint= of s3://acme/pg?keys=B2", "AWS_CA_BUNDLE"}},
		{answer(503, "SlowDown", "Please reduce your request rate."), aws, "UploadPart", nil,
			[]string{"SlowDown", "BACKUP_PARALLEL"}},
	} {
		err := Explain(c.err, c.d, c.op, c.input)
		e, ok := As(err)
		if !ok {
			t.Errorf("%v: not explained", c.err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, c.d.Label+": ") || strings.Contains(msg, "\n") {
			t.Errorf("%q does not start with the destination, on one line", msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s on %s: %q lacks %q", Code(c.err), c.op, msg, w)
			}
		}
		if !errors.Is(err, c.err) || Of(err) != e.Class {
			t.Errorf("%q: the cause is lost", msg)
		}
	}
	for _, err := range []error{answer(412, "PreconditionFailed", ""), answer(501, "NotImplemented", ""), answer(500, "InternalError", ""), errors.New("eof")} {
		if got := Explain(err, aws, "PutObject", nil); got != err {
			t.Errorf("Explain(%v) = %v, want it unchanged", err, got)
		}
	}
}
