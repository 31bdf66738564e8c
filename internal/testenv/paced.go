package testenv

import (
	"net/http"
	"time"
)

// PacedHandler serves each response of h at rate bytes per second, paced in the server as S3
// paces one connection. A proxy with a bandwidth limit is not the same: the kernel's socket
// buffers between the server and the proxy take a whole 2 MiB range at once, so the server
// finishes early and never sees as many requests at once as the client makes.
func PacedHandler(h http.Handler, rate float64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&pacedWriter{ResponseWriter: w, rate: rate, start: time.Now()}, r)
	})
}

type pacedWriter struct {
	http.ResponseWriter
	rate  float64
	start time.Time
	sent  int
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		k, err := p.ResponseWriter.Write(b[written:min(len(b), written+16<<10)])
		written += k
		p.sent += k
		if err != nil {
			return written, err
		}
		time.Sleep(time.Until(p.start.Add(time.Duration(float64(p.sent) / p.rate * float64(time.Second)))))
	}
	return written, nil
}
