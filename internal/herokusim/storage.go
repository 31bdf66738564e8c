package herokusim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const amzDate = "20060102T150405Z"

// signLocked makes a backup's pre-signed URL: S3's query-string form, signed with a secret of
// this simulator, valid for ttl from now.
func (s *Sim) signLocked(t *transfer, now time.Time, ttl time.Duration) string {
	path := fmt.Sprintf("/xfrtu/%s/%s/%03d.dump", t.addon.id, t.uuid, t.num)
	date := now.Format(amzDate)
	expires := strconv.Itoa(int(ttl / time.Second))
	if ttl < time.Second {
		expires = "1"
	}
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "AKIASIMULATOR/"+now.Format("20060102")+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", expires)
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", s.signature(path, date, expires))
	return s.storageURL + path + "?" + q.Encode()
}

func (s *Sim) signature(path, date, expires string) string {
	m := hmac.New(sha256.New, s.secret)
	io.WriteString(m, path+"\n"+date+"\n"+expires)
	return hex.EncodeToString(m.Sum(nil))
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message><RequestId>%X</RequestId><HostId>sim</HostId></Error>`,
		code, msg, randomBytes(8))
}

// Storage serves backups at their signed URLs, as S3 does: GET only (a HEAD does not match the
// GET signature), no Authorization header, not after expiry, with Range support.
func (s *Sim) Storage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{API: "storage", Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "" {
			s3Error(w, 400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
			return
		}
		q := r.URL.Query()
		date, expires, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
		if r.Method != http.MethodGet || !hmac.Equal([]byte(sig), []byte(s.signature(r.URL.Path, date, expires))) {
			s3Error(w, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
			return
		}
		signed, err1 := time.Parse(amzDate, date)
		secs, err2 := strconv.Atoi(expires)
		if err1 != nil || err2 != nil || s.o.Now().After(signed.Add(time.Duration(secs)*time.Second)) {
			s3Error(w, 403, "AccessDenied", "Request has expired")
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		var path string
		s.mu.Lock()
		if len(parts) == 4 {
			for _, ts := range s.transfers {
				for _, t := range ts {
					if t.uuid == parts[2] {
						path = t.path
					}
				}
			}
		}
		s.mu.Unlock()
		f, err := os.Open(path)
		if path == "" || err != nil {
			s3Error(w, 404, "NoSuchKey", "The specified key does not exist.")
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		errorPage, wrongLength := s.faults.storageMode()
		switch {
		case errorPage:
			page := "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n"
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			io.WriteString(w, page)
			return
		case wrongLength:
			serveShort(w, r, f, fi.Size())
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(path))))
		w.Header().Set("Content-Type", "binary/octet-stream")
		if after, ok := s.faults.takeCut(); ok {
			w = &cutWriter{ResponseWriter: w, left: after}
		}
		http.ServeContent(w, r, "", fi.ModTime(), f)
		if c, ok := w.(*cutWriter); ok && c.left <= 0 {
			c.cut()
		}
	})
}

// cutWriter passes through left body bytes, then drops the connection, as a reset would.
type cutWriter struct {
	http.ResponseWriter
	left int64
	gone bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.gone {
		return 0, io.ErrClosedPipe
	}
	if int64(len(p)) > c.left {
		n, _ := c.ResponseWriter.Write(p[:max(c.left, 0)])
		c.left -= int64(n)
		c.cut()
		return n, io.ErrClosedPipe
	}
	n, err := c.ResponseWriter.Write(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutWriter) cut() {
	if c.gone {
		return
	}
	c.gone = true
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush() // what was written goes out before the connection drops
	}
	if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
		if conn, buf, err := hj.Hijack(); err == nil {
			buf.Flush()
			conn.Close()
		}
	}
}

// serveShort announces one byte more than the object has, sends what there is, and closes.
func serveShort(w http.ResponseWriter, r *http.Request, f *os.File, size int64) {
	start, end := int64(0), size // end is the announced last byte: one past the real end
	if a, b, ok := parseRange(r.Header.Get("Range")); ok {
		start, end = a, min(b, size)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if r.Header.Get("Range") != "" {
		fmt.Fprintf(buf, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n", start, end, size+1)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\n")
	}
	fmt.Fprintf(buf, "Content-Length: %d\r\nContent-Type: binary/octet-stream\r\n\r\n", end-start+1)
	if start < size {
		io.Copy(buf, io.NewSectionReader(f, start, min(end, size-1)-start+1))
	}
	buf.Flush()
}

func parseRange(h string) (int64, int64, bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, 0, false
	}
	as, bs, ok := strings.Cut(spec, "-")
	a, err1 := strconv.ParseInt(as, 10, 64)
	b, err2 := strconv.ParseInt(bs, 10, 64)
	return a, b, ok && err1 == nil && err2 == nil
}
