// Package s3name is the one check of S3 bucket names, following S3's rules for general purpose
// buckets (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html), so that
// configuration and setup-bucket refuse the same names.
package s3name

import (
	"net"
	"regexp"
	"strings"
)

var bucketCharsRE = regexp.MustCompile(`^[a-z0-9.-]+$`)

// BucketProblem says why b is not a valid name for a general purpose S3 bucket, or "" when it
// is one. The message completes "is not a valid S3 bucket name: ".
func BucketProblem(b string) string {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	switch {
	case len(b) < 3 || len(b) > 63:
		return "it must be 3 to 63 characters long"
	case !bucketCharsRE.MatchString(b):
		return "it may hold only lowercase letters, digits, dots and dashes"
	case !alnum(b[0]) || !alnum(b[len(b)-1]):
		return "it must begin and end with a letter or digit"
	case strings.Contains(b, ".."):
		return "it must not hold two dots in a row"
	case net.ParseIP(b) != nil:
		return "it must not look like an IP address"
	case strings.HasSuffix(b, ".amazonaws.com"):
		return "this is an S3 endpoint's host name; write only the bucket's name"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return "names beginning with " + p + " are reserved"
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return "names ending with " + s + " are reserved"
		}
	}
	return ""
}
