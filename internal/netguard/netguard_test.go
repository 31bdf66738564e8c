package netguard

import (
	"net/url"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "LOCALHOST": true, "127.8.9.1": true,
		"10.0.0.1": false, "example.com": false, "169.254.169.254": false, "localhost.example.com": false} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

func TestAllowed(t *testing.T) {
	for raw, want := range map[string]bool{"https://api.heroku.com": true, "http://127.0.0.1:9000": true,
		"http://api.heroku.com": false, "ftp://127.0.0.1": false} {
		u, _ := url.Parse(raw)
		if got := Allowed(u); got != want {
			t.Errorf("Allowed(%s) = %v", raw, got)
		}
	}
}
