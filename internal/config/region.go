package config

import (
	"regexp"

	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// awsRegion is the shape of every AWS region name: eu-west-1, us-gov-west-1, ap-southeast-3.
// A region outside it (eu-west1) would only fail later, as a host name that does not resolve.
var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// regionShape refuses a global region that no AWS region is spelled like, when an s3://
// destination sends it to Amazon S3 itself (no endpoint of its own, no region= of its own):
// other providers spell theirs as they please (auto, nyc3, eu-central-003).
func (ck *checker) regionShape(e env, c *Config) {
	if c.Region == "" || awsRegion.MatchString(c.Region) || !dest.OnAWS(c.S3Endpoint) {
		return
	}
	name := "AWS_REGION"
	if e.Region == "" {
		name = "AWS_DEFAULT_REGION"
	}
	for _, a := range c.Archives {
		if s, ok := s3store.SettingsOf(a); ok && s.Region == "" && dest.OnAWS(s.Endpoint) {
			ck.add(name, ck.q(c.Region)+" is not the name of an AWS region, and "+a.String()+" is on Amazon S3",
				"write the bucket's region as AWS spells it, e.g. eu-west-1 or us-east-2 (the S3 console shows it); for a store other than AWS, set its endpoint (AWS_ENDPOINT_URL_S3, or endpoint= in ARCHIVE_URL)")
			return
		}
	}
}
