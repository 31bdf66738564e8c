package fetch

import (
	"net"
	"net/http"
	"time"
)

// DownloadClient reads signed URLs: no overall timeout (a big dump takes hours). fetch sends
// every request through its stall watchdog (no body bytes for 30 s, no headers for 60 s); the
// header timeout here is only a backstop behind it.
func DownloadClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 2 * time.Minute
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// Every range in flight keeps its connection between ranges (the default keeps two idle per
	// host, and each range past that would pay a new TCP and TLS handshake).
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
}
