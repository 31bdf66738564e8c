// Package s3err is the one place an answer of S3 (or an S3-compatible store), or a failure to
// reach it, becomes a class: denied, wrong keys, no such bucket, another region, a host that
// does not resolve, a certificate that is not trusted, throttled, not implemented, a failed or
// conflicting condition. The store, the bucket setup and the preflight check read the class,
// never the error's text or status code themselves; and every error of a client that Annotate
// equips says, in its own text, which destination answered, the variable to fix and the
// command that helps — whichever command logs it.
package s3err

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"regexp"
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
	WrongRegion              // 301 PermanentRedirect, AuthorizationHeaderMalformed: the bucket is in another region
	NotImplemented           // 501, NotImplemented: the store lacks the feature
	PreconditionFailed       // 412: If-None-Match found an object at the key
	Conflict                 // 409, ConditionalRequestConflict: a concurrent conditional write
	UnknownHost              // the endpoint's host name does not resolve (DNS)
	Untrusted                // the TLS handshake failed: a certificate not trusted, or no TLS at all
	Throttled                // 503 SlowDown: the store asks for fewer requests, after every retry
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
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently,
		status == http.StatusBadRequest && bucketRegion(err) != "": // a HEAD's answer has no body, only the header
		return WrongRegion
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		return NotImplemented
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return PreconditionFailed
	case code == "ConditionalRequestConflict" || status == http.StatusConflict:
		return Conflict
	case code == "SlowDown":
		return Throttled
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return UnknownHost
	}
	if untrusted(err) {
		return Untrusted
	}
	return Other
}

// untrusted recognises a TLS handshake that failed: a certificate for another name, signed by
// an unknown authority or expired, or a server that does not speak TLS at all.
func untrusted(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record)
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

// bucketRegion is the region the store says the bucket is in: the x-amz-bucket-region header
// of a redirect, or the region AuthorizationHeaderMalformed expects; "" when it says none.
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); regionName.MatchString(r) {
			return r
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if m := expecting.FindStringSubmatch(ae.ErrorMessage()); m != nil {
			return m[1]
		}
	}
	return ""
}

var (
	expecting  = regexp.MustCompile(`expecting '([a-z0-9-]{1,40})'`)
	regionName = regexp.MustCompile(`^[a-z0-9-]{1,40}$`)
)

// ChecksumRefused recognises a store that refuses S3's newer checksum headers
// (x-amz-checksum-*, x-amz-sdk-checksum-algorithm, x-amz-trailer) rather than the bytes: Cloudflare
// R2's 501 NotImplemented "Header 'x-amz-checksum-sha256' ... not implemented", Backblaze B2's
// 400 "Unsupported header 'x-amz-checksum-sha256'", the 400 InvalidArgument of Google Cloud
// Storage's XML API naming the header, and the 400 XAmzContentSHA256Mismatch of Ceph's gateway
// (Akamai/Linode). A checksum that does not match the bytes (BadDigest, InvalidDigest) is a
// damaged upload, never this.
func ChecksumRefused(err error) bool {
	code, status := Code(err), Status(err)
	switch {
	case code == "BadDigest" || code == "InvalidDigest" || status == http.StatusPreconditionFailed || status == http.StatusConflict:
		return false
	case code == "XAmzContentSHA256Mismatch":
		return true
	case status != http.StatusBadRequest && status != http.StatusNotImplemented:
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	msg := strings.ToLower(ae.ErrorMessage())
	for _, h := range []string{"x-amz-checksum", "x-amz-sdk-checksum", "x-amz-trailer"} {
		if strings.Contains(msg, h) {
			return true
		}
	}
	return false
}
