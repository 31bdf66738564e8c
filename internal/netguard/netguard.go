// Package netguard decides which URLs credentials and archives may travel over: https anywhere,
// plain http only to this machine (a local simulator or store in tests and the demo).
package netguard

import (
	"net"
	"net/url"
	"strings"
)

// IsLoopback reports whether host (without port) is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Allowed reports whether u may be used: https, or http towards a loopback host.
func Allowed(u *url.URL) bool {
	return u.Scheme == "https" || (u.Scheme == "http" && IsLoopback(u.Hostname()))
}
