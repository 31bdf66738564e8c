package config

import (
	"strings"
	"testing"
)

// AWS_REGION is checked for the shape of a region before any request: eu-west1 would fail as
// a host name that does not resolve. Other providers' regions pass where their endpoint is set.
func TestRegionShape(t *testing.T) {
	for _, c := range []struct {
		set  map[string]string
		bad  string // the variable refused; "" for none
		del  []string
		name string
	}{
		{name: "missing dash", set: map[string]string{"AWS_REGION": "eu-west1"}, bad: "AWS_REGION"},
		{name: "underscore", set: map[string]string{"AWS_REGION": "us_east_1"}, bad: "AWS_REGION"},
		{name: "default region", set: map[string]string{"AWS_DEFAULT_REGION": "euwest1"}, del: []string{"AWS_REGION"}, bad: "AWS_DEFAULT_REGION"},
		{name: "aws endpoint", set: map[string]string{"AWS_REGION": "eu-west1", "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com"}, bad: "AWS_REGION"},
		{name: "gov", set: map[string]string{"AWS_REGION": "us-gov-west-1"}},
		{name: "ok", set: map[string]string{"AWS_REGION": "ap-southeast-3"}},
		{name: "other provider", set: map[string]string{"AWS_REGION": "nyc3", "AWS_ENDPOINT_URL_S3": "https://nyc3.digitaloceanspaces.com"}},
		{name: "own region", set: map[string]string{"AWS_REGION": "auto", "ARCHIVE_URL": "s3://acme/pg?region=eu-west-1"}},
		{name: "own endpoint", set: map[string]string{"AWS_REGION": "auto", "ARCHIVE_URL": "s3://acme/pg?endpoint=https://x.r2.cloudflarestorage.com"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.bad == "" {
				setEnv(t, with(valid(), c.set, c.del...))
				if _, err := Load(); err != nil {
					t.Errorf("problems: %v", err)
				}
				return
			}
			ps := loadProblems(t, with(valid(), c.set, c.del...))
			if len(ps) != 1 || ps[0].Var != c.bad || !strings.Contains(ps[0].Message, "is not the name of an AWS region") || !strings.Contains(ps[0].Fix, "e.g. eu-west-1") {
				t.Errorf("problems:\n%s\nwant one of %s naming an example", ps, c.bad)
			}
		})
	}
}
