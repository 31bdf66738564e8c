package s3err_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// client is an S3 client of pgoffsite's (s3store.NewClient) for destination label at endpoint.
func client(t *testing.T, endpoint, label string) *s3.Client {
	t.Helper()
	c, err := s3store.NewClient(context.Background(), s3store.ClientOptions{Endpoint: endpoint, EndpointSource: "endpoint= of " + label + " in ARCHIVE_URL",
		Region: "eu-west-1", ForcePathStyle: true, AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		MaxAttempts: 2, Dest: s3err.Dest{Label: label}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Through the client every command uses, each of AWS's error answers comes back explained: its
// class, the destination, the variable or command of the fix — and never the secret key.
func TestStandInAnswersExplained(t *testing.T) {
	want := map[string]struct {
		class s3err.Class
		says  []string
	}{
		"AccessDenied":                 {s3err.Denied, []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "`pgoffsite policy"}},
		"InvalidAccessKeyId":           {s3err.BadCredentials, []string{"does not know the access key ID", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		"SignatureDoesNotMatch":        {s3err.BadCredentials, []string{"does not belong to the access key ID", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		"NoSuchBucket":                 {s3err.NoSuchBucket, []string{"bucket does not exist", "ARCHIVE_URL", "`pgoffsite setup-bucket`"}},
		"PermanentRedirect":            {s3err.WrongRegion, []string{"in ap-southeast-2, not eu-west-1", "to ap-southeast-2"}},
		"AuthorizationHeaderMalformed": {s3err.WrongRegion, []string{"in us-east-2, not eu-west-1", "to us-east-2"}},
		"SlowDown":                     {s3err.Throttled, []string{"SlowDown", "BACKUP_PARALLEL"}},
	}
	for _, a := range s3errtest.All {
		t.Run(a.Name, func(t *testing.T) {
			srv := s3errtest.Serve(t, a)
			label := "s3://acme-db-archive/pg?endpoint=" + srv.URL
			c := client(t, srv.URL, label)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, put := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-db-archive"), Key: aws.String("pg/x.dump"), Body: strings.NewReader("x")})
			_, get := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-db-archive"), Key: aws.String("pg/x.dump")})
			for op, err := range map[string]error{"PutObject": put, "GetObject": get} {
				e, ok := s3err.As(err)
				if !ok || e.Class != want[a.Name].class || e.Op != op {
					t.Fatalf("%s: %v: not explained as class %d", op, err, want[a.Name].class)
				}
				msg := err.Error()
				for _, w := range append(want[a.Name].says, label+": ") {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: %q lacks %q", op, msg, w)
					}
				}
				if strings.Contains(msg, "wJalrXUtnFEMI") {
					t.Errorf("%s: the secret key is in %q", op, msg)
				}
			}
			if a.Name == "AccessDenied" {
				if put, get := put.Error(), get.Error(); !strings.Contains(put, "`pgoffsite policy` prints") || !strings.Contains(get, "`pgoffsite policy --reader`") {
					t.Errorf("a denied write should point at the uploader's policy, a denied read at the reader's:\n%s\n%s", put, get)
				}
			}
		})
	}
}

// A host that does not resolve and a certificate nobody trusts are explained too, naming the
// setting the endpoint came from.
func TestUnreachableStoreExplained(t *testing.T) {
	tlsSrv := s3errtest.ServeTLS(t, s3errtest.AccessDenied)
	for _, c := range []struct {
		endpoint string
		class    s3err.Class
		says     string
	}{
		{"https://s3.pgoffsite-test.invalid", s3err.UnknownHost, "does not resolve"},
		{tlsSrv.URL, s3err.Untrusted, "TLS handshake"},
	} {
		label := "s3://acme-db-archive/pg?endpoint=" + c.endpoint
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := client(t, c.endpoint, label).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-db-archive"), Key: aws.String("pg/x.dump"), Body: strings.NewReader("x")})
		cancel()
		e, ok := s3err.As(err)
		if !ok || e.Class != c.class || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "check the host in endpoint= of "+label) &&
			!strings.Contains(err.Error(), "check endpoint= of "+label) {
			t.Errorf("%s: %v, want class %d saying %q and naming the endpoint's setting", c.endpoint, err, c.class, c.says)
		}
	}
	if tlsSrv.Requests() != 0 {
		t.Errorf("the untrusted store received %d requests", tlsSrv.Requests())
	}
}
