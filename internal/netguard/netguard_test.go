package netguard

import (
	"errors"
	"net/url"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "LOCALHOST": true, "127.8.9.1": true,
		"10.0.0.1": false, "example.com": false, "169.254.169.254": false, "localhost.example.com": false, "": false} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

func TestCheck(t *testing.T) {
	for raw, want := range map[string]error{
		"https://api.heroku.com":           nil,
		"https://api.heroku.com:443/x?y=z": nil,
		"HTTPS://API.HEROKU.COM":           nil, // url.Parse lowercases the scheme
		"http://127.0.0.1:9000":            nil,
		"http://localhost:5000/v1":         nil,
		"http://[::1]:9000":                nil,
		"http://api.heroku.com":            ErrPlainHTTP,
		"http://10.0.0.5:5000":             ErrPlainHTTP,
		"http://169.254.169.254/latest":    ErrPlainHTTP,
		"http://127.0.0.1.example.com":     ErrPlainHTTP,
		"ftp://127.0.0.1":                  ErrScheme,
		"s3://bucket/x":                    ErrScheme,
		"https://:443":                     ErrNotAbsolute,
		"https:///path":                    ErrNotAbsolute,
		"api.heroku.com":                   ErrNotAbsolute,
		"/relative":                        ErrNotAbsolute,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := Check(u); !errors.Is(got, want) || (want == nil) != (got == nil) {
			t.Errorf("Check(%s) = %v, want %v", raw, got, want)
		}
		if Allowed(u) != (want == nil) {
			t.Errorf("Allowed(%s) = %v", raw, Allowed(u))
		}
	}
	if Check(nil) != ErrNotAbsolute {
		t.Error("Check(nil) accepted")
	}
}
