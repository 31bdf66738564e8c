// Package s3err is the one place an answer of S3 (or an S3-compatible store) becomes a class:
// denied, missing, in another region, not implemented, a failed or conflicting condition. The
// store, the bucket setup and the preflight check read the class, never the error's text or
// status code themselves, and Fix says which variable sets right what a class reports.
package s3err

import (
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Class is what an S3 answer means to pgoffsite.
type Class int

const (
	Other              Class = iota
	Denied                   // 403, AccessDenied: the credentials may not do this
	BadCredentials           // InvalidAccessKeyId, SignatureDoesNotMatch: the keys themselves are wrong
	NoSuchBucket             // the bucket does not exist (at this endpoint)
	WrongRegion              // 301, PermanentRedirect: the bucket is in another region
	NotImplemented           // 501, NotImplemented: the store lacks the feature
	PreconditionFailed       // 412: If-None-Match found an object at the key
	Conflict                 // 409, ConditionalRequestConflict: a concurrent conditional write
)

// Of classifies err; Other when it is no answer of S3's or none of the above.
func Of(err error) Class {
	if err == nil {
		return Other
	}
	code, status := Code(err), Status(err)
	switch {
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		return BadCredentials
	case code == "AccessDenied" || status == http.StatusForbidden:
		return Denied
	case code == "NoSuchBucket":
		return NoSuchBucket
	case code == "PermanentRedirect" || status == http.StatusMovedPermanently:
		return WrongRegion
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		return NotImplemented
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return PreconditionFailed
	case code == "ConditionalRequestConflict" || status == http.StatusConflict:
		return Conflict
	}
	return Other
}

// Code is the S3 error code of err ("AccessDenied"); "" when it carries none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Status is the HTTP status of the answer behind err; 0 when there was none.
func Status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// ConditionalUnsupported recognises a store that does not implement If-None-Match on writes:
// a 501, or a client error (not a failed or conflicting condition) that names the header.
func ConditionalUnsupported(err error) bool {
	if Of(err) == NotImplemented {
		return true
	}
	var msg string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg = ae.ErrorMessage()
	}
	status := Status(err)
	return status >= 400 && status < 500 && status != http.StatusPreconditionFailed && status != http.StatusConflict &&
		strings.Contains(strings.ToLower(msg), "if-none-match")
}

// Vars are the variables that configure one S3 destination, for a fix to name.
type Vars struct {
	// Keys is keys=NAME of the destination; "" for the default AWS chain.
	Keys string
}

// keyVars names the key pair the destination's credentials come from.
func (v Vars) keyVars() string {
	if v.Keys != "" {
		return v.Keys + "_ACCESS_KEY_ID and " + v.Keys + "_SECRET_ACCESS_KEY"
	}
	return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
}

// Fix says what to do about an answer of class c at the destination v configures; "" when the
// error itself says all there is.
func Fix(c Class, v Vars) string {
	switch c {
	case BadCredentials:
		return "set " + v.keyVars() + " to a key pair the provider issued (heroku config:set), both from the same pair"
	case Denied:
		return "give the keys in " + v.keyVars() + " the policy `pgoffsite policy` prints, or set them to keys that have it"
	case NoSuchBucket:
		return "check the bucket's name in ARCHIVE_URL, or create it with `pgoffsite setup-bucket`"
	case WrongRegion:
		return "set AWS_REGION (or region= of this destination in ARCHIVE_URL) to the bucket's region"
	}
	return ""
}
