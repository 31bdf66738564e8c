package s3err

import (
	"context"
	"errors"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/pgoffsite/pgoffsite/internal/retention"
)

// Dest is the destination a client talks to, as the messages name it and the variables that
// configure it: never a secret.
type Dest struct {
	// Label is the destination as ARCHIVE_URL names it: s3://bucket/prefix with its parameters.
	Label string
	// Keys is keys=NAME of the destination; "" for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	Keys string
	// Region is the region requests are signed for; RegionParam says it is region= of the
	// destination's URL rather than AWS_REGION.
	Region      string
	RegionParam bool
	// Endpoint names the setting the endpoint comes from (endpoint= of the destination,
	// AWS_ENDPOINT_URL_S3); "" for Amazon S3 itself.
	Endpoint string
}

// keyVars names the key pair the destination's credentials come from.
func (d Dest) keyVars() string {
	if d.Keys != "" {
		return d.Keys + "_ACCESS_KEY_ID and " + d.Keys + "_SECRET_ACCESS_KEY"
	}
	return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
}

// regionVar names where the destination's region is set.
func (d Dest) regionVar() string {
	if d.RegionParam {
		return "region= of " + d.Label + " in ARCHIVE_URL"
	}
	return "AWS_REGION (or region= of this destination in ARCHIVE_URL)"
}

// role is what a request does, which says whose keys should have been allowed to.
type role int

const (
	writing     role = iota // the uploader's: archives, manifests, retention markers
	reading                 // the reader's: verify, status, restore
	configuring             // the bucket owner's: setup-bucket
)

// roleOf tells what operation op (with its input) does. The uploader lists only the retention
// markers; any other listing reads the archives.
func roleOf(op string, input any) role {
	switch {
	case strings.Contains(op, "Bucket") && op != "ListBuckets", strings.Contains(op, "PublicAccessBlock"),
		strings.Contains(op, "ObjectLockConfiguration"):
		return configuring
	case op == "ListObjectsV2":
		if in, ok := input.(*s3.ListObjectsV2Input); ok && in.Prefix != nil && strings.Contains(*in.Prefix, retention.MarkerPrefix) {
			return writing
		}
		return reading
	case strings.HasPrefix(op, "Get"), strings.HasPrefix(op, "Head"), strings.HasPrefix(op, "List"), op == "RestoreObject":
		return reading
	}
	return writing
}

// Error is an S3 error, or a failure to reach S3, of a class with a fix: what it means at the
// destination it came from, and what to do. Its text is one line, whoever logs it.
type Error struct {
	Class Class
	Dest  Dest
	Op    string // the S3 operation, e.g. PutObject
	role  role
	Err   error
}

func (e *Error) Error() string {
	return e.Dest.Label + ": " + e.Problem() + "; fix: " + e.Fix()
}

func (e *Error) Unwrap() error { return e.Err }

// Problem says what went wrong, naming the store's error code.
func (e *Error) Problem() string {
	code := Code(e.Err)
	if code == "" {
		code = e.Op
	}
	switch e.Class {
	case Denied:
		switch e.role {
		case reading:
			if Code(e.Err) == "Forbidden" || Code(e.Err) == "" {
				// The answer to a HEAD has no body: denied and wrong keys look alike.
				return "these keys may not read the archives (" + code + " on " + e.Op + ", an answer without a reason): the uploader's, which may only write, or keys that are wrong"
			}
			return "these keys may not read the archives (" + code + " on " + e.Op + "): are they the uploader's, which may only write?"
		case configuring:
			return "these keys may not configure the bucket (" + code + " on " + e.Op + ")"
		}
		return "these keys may not write the archives (" + code + " on " + e.Op + ")"
	case BadCredentials:
		if code == "SignatureDoesNotMatch" {
			return "the secret access key does not belong to the access key ID (SignatureDoesNotMatch)"
		}
		return "the store does not know the access key ID (" + code + "): a key of another provider or account, or a deleted one"
	case NoSuchBucket:
		return "the bucket does not exist (NoSuchBucket)"
	case WrongRegion:
		r := "the bucket is not in " + e.Dest.Region
		if b := bucketRegion(e.Err); b != "" {
			r = "the bucket is in " + b + ", not " + e.Dest.Region
		}
		return r + " (" + code + ")"
	case UnknownHost:
		return "the store's host name does not resolve (DNS)"
	case Untrusted:
		return "the TLS handshake with the store failed (" + tlsReason(e.Err) + ")"
	case Throttled:
		return "the store kept asking for fewer requests (SlowDown), through every retry"
	}
	return e.Err.Error()
}

// Fix says what to do: the variable to set right, and the command that helps.
func (e *Error) Fix() string {
	d := e.Dest
	switch e.Class {
	case Denied:
		switch e.role {
		case reading:
			return "verify, status and restore need the reader's keys: create keys with the policy `pgoffsite policy --reader` prints and set " + d.keyVars() + " to them (both halves of one pair) where these commands run"
		case configuring:
			return "run `pgoffsite setup-bucket` with the bucket owner's keys in " + d.keyVars() + " (the uploader's and the reader's may not change the bucket)"
		}
		return "give the keys in " + d.keyVars() + " the policy `pgoffsite policy` prints, or set them to keys that have it"
	case BadCredentials:
		return "set " + d.keyVars() + " to a key pair this provider issued, both halves of the same pair (heroku config:set)"
	case NoSuchBucket:
		if d.Endpoint != "" {
			return "check the bucket's name in ARCHIVE_URL and the endpoint in " + d.Endpoint + ", or create the bucket with `pgoffsite setup-bucket`"
		}
		return "check the bucket's name in ARCHIVE_URL, or create the bucket with `pgoffsite setup-bucket`"
	case WrongRegion:
		want := "the bucket's region"
		if b := bucketRegion(e.Err); b != "" {
			want = b
		}
		return "set " + d.regionVar() + " to " + want
	case UnknownHost:
		if d.Endpoint != "" {
			return "check the host in " + d.Endpoint
		}
		return "check " + d.regionVar() + ": a region looks like eu-west-1 (it was " + quote(d.Region) + "), and the bucket's name in ARCHIVE_URL"
	case Untrusted:
		if d.Endpoint != "" {
			return "check " + d.Endpoint + ": an https:// URL whose server has a certificate for that host name (a private CA goes in AWS_CA_BUNDLE)"
		}
		return "something between here and Amazon S3 intercepts TLS: run where the network reaches S3 directly, or give its CA in AWS_CA_BUNDLE"
	case Throttled:
		return "run fewer uploads at once (lower BACKUP_PARALLEL or BACKUP_FANOUT), or run again later: S3 raises a prefix's request rate within minutes"
	}
	return ""
}

func quote(s string) string { return `"` + s + `"` }

// tlsReason names the TLS failure briefly.
func tlsReason(err error) string {
	msg := err.Error()
	for _, r := range []string{"certificate signed by unknown authority", "certificate is valid for", "certificate has expired",
		"first record does not look like a TLS handshake"} {
		if strings.Contains(msg, r) {
			return r
		}
	}
	return "certificate not trusted"
}

// explained are the classes an Error explains; the others are for the code to handle (a failed
// condition, a missing feature) or say all there is themselves.
func explained(c Class) bool {
	switch c {
	case Denied, BadCredentials, NoSuchBucket, WrongRegion, UnknownHost, Untrusted, Throttled:
		return true
	}
	return false
}

// Explain is err as an *Error when its class has a fix (d is where it came from, op the S3
// operation, input its parameters); err itself otherwise.
func Explain(err error, d Dest, op string, input any) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	c := Of(err)
	if !explained(c) {
		return err
	}
	return &Error{Class: c, Dest: d, Op: op, role: roleOf(op, input), Err: err}
}

// As finds the *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Annotate is an S3 client option (s3.Options.APIOptions) that explains every error of the
// client's operations, after the SDK's retries, for destination *d (read when an error
// happens, so that the client's builder may complete it after the client is made).
func Annotate(d *Dest) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("pgoffsiteExplain",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					err = Explain(err, *d, awsmiddleware.GetOperationName(ctx), in.Parameters)
				}
				return out, md, err
			}), middleware.Before)
	}
}
