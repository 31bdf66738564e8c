// Package netguard is the one rule for which URLs credentials and archives may travel over:
// https anywhere, plain http only to this machine (a local simulator or store in tests and the
// demo). Every place that sends a key, a signed URL or an archive asks it.
package netguard

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Why a URL is refused; Check wraps one of them.
var (
	ErrNotAbsolute = errors.New("not an absolute URL with a host")
	ErrPlainHTTP   = errors.New("plain http outside loopback: credentials and data would cross the network unencrypted")
	ErrScheme      = errors.New("neither https nor http")
)

// IsLoopback reports whether host (without port) is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check returns nil when u may be used — absolute, with a host, and https, or http towards a
// loopback host — and otherwise ErrNotAbsolute, ErrScheme or ErrPlainHTTP.
func Check(u *url.URL) error {
	switch {
	case u == nil || u.Hostname() == "":
		return ErrNotAbsolute
	case u.Scheme == "https":
		return nil
	case u.Scheme != "http":
		return ErrScheme
	case !IsLoopback(u.Hostname()):
		return ErrPlainHTTP
	}
	return nil
}

// Allowed reports whether u may be used (Check finds nothing wrong).
func Allowed(u *url.URL) bool { return Check(u) == nil }
