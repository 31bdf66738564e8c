package s3name

import (
	"strings"
	"testing"
)

func TestBucketProblem(t *testing.T) {
	for name, want := range map[string]string{
		"acme": "", "my.bucket-01": "", "abc": "", strings.Repeat("a", 63): "", "1-2.3x": "",
		"ab": "3 to 63", strings.Repeat("a", 64): "3 to 63", "": "3 to 63",
		"My_Bucket": "only lowercase", "acme:9000": "only lowercase", "acme/x": "only lowercase",
		"acme-": "begin and end", ".acme": "begin and end", "-acme": "begin and end",
		"acme..db":                        "two dots",
		"192.168.5.4":                     "IP address",
		"acme.s3.eu-west-1.amazonaws.com": "endpoint",
		"xn--acme":                        "reserved", "sthree-acme": "reserved", "amzn-s3-demo-acme": "reserved",
		"acme-s3alias": "reserved", "acme--ol-s3": "reserved", "acme.mrap": "reserved", "acme--x-s3": "reserved", "acme--table-s3": "reserved",
	} {
		got := BucketProblem(name)
		switch {
		case want == "" && got != "":
			t.Errorf("BucketProblem(%q) = %q, want it valid", name, got)
		case want != "" && !strings.Contains(got, want):
			t.Errorf("BucketProblem(%q) = %q, want one about %q", name, got, want)
		}
	}
}
