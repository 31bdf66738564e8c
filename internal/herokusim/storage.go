package herokusim

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

const amzDate = "20060102T150405Z"

// signLocked makes a backup's pre-signed URL: S3's SigV4 query-string form, signed with this
// simulator's secret over the path, the signing time and the lifetime, valid for ttl from now.
func (s *Sim) signLocked(t *transfer, now time.Time, ttl time.Duration) string {
	return s.signPath(fmt.Sprintf("%s%s/%s.dump", storagePrefix, t.addon.id, t.uuid), now, ttl)
}

// signPath is the storage server's signed URL of path p, valid for ttl from now.
func (s *Sim) signPath(p string, now time.Time, ttl time.Duration) string {
	date := now.Format(amzDate)
	expires := strconv.Itoa(max(int(ttl/time.Second), 1))
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "ASIAHEROKUSIMULATOR/"+now.Format("20060102")+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", expires)
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", s.signature(p, date, expires))
	return s.storageURL + p + "?" + q.Encode()
}

func (s *Sim) signature(p, date, expires string) string {
	m := hmac.New(sha256.New, s.secret)
	io.WriteString(m, p+"\n"+date+"\n"+expires)
	return hex.EncodeToString(m.Sum(nil))
}

// s3Error writes an S3 error document.
func s3Error(w http.ResponseWriter, status int, code, msg string, extra ...string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	var more strings.Builder
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&more, "<%s>", extra[i])
		xml.EscapeText(&more, []byte(extra[i+1]))
		fmt.Fprintf(&more, "</%s>", extra[i])
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message>%s<RequestId>%X</RequestId><HostId>%s</HostId></Error>`,
		code, msg, more.String(), randomBytes(8), hex.EncodeToString(randomBytes(24)))
}

// Storage serves backups at their signed URLs as S3 does: GET only (a HEAD does not match a GET
// signature), no Authorization header beside the query signature, nothing after expiry; single
// byte ranges (206, or 416 when unsatisfiable); several ranges in one request get the whole object.
func (s *Sim) Storage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record("storage", r)
		if s.serveSlugBlob(w, r) {
			return
		}
		w.Header().Set("Server", "AmazonS3")
		w.Header().Set("x-amz-request-id", fmt.Sprintf("%X", randomBytes(8)))
		q := r.URL.Query()
		date, expires, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
		switch {
		case r.Header.Get("Authorization") != "":
			s3Error(w, 400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
				"ArgumentName", "Authorization", "ArgumentValue", "[redacted]")
			return
		case sig == "" || date == "" || expires == "":
			s3Error(w, 403, "AccessDenied", "Access Denied")
			return
		case r.Method != http.MethodGet:
			s3Error(w, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
			return
		}
		signed, err1 := time.Parse(amzDate, date)
		secs, err2 := strconv.Atoi(expires)
		if err1 != nil || err2 != nil || secs < 1 || secs > 604800 {
			s3Error(w, 400, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed.")
			return
		}
		now := s.now()
		if exp := signed.Add(time.Duration(secs) * time.Second); now.After(exp) {
			s3Error(w, 403, "AccessDenied", "Request has expired", "X-Amz-Expires", expires,
				"Expires", exp.Format(time.RFC3339), "ServerTime", now.Format(time.RFC3339))
			return
		}
		if !hmac.Equal([]byte(sig), []byte(s.signature(r.URL.Path, date, expires))) {
			s3Error(w, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
			return
		}
		if !s.faults.enterStorage() {
			s3Error(w, 503, "SlowDown", "Please reduce your request rate.")
			return
		}
		defer s.faults.leaveStorage()
		uuid := strings.TrimSuffix(path.Base(r.URL.Path), ".dump")
		var file string
		var modified time.Time
		s.mu.Lock()
		for _, ts := range s.transfers {
			for _, t := range ts {
				if t.uuid == uuid && t.ok() && t.deleted.IsZero() { // S3 forgets a deleted backup
					file, modified = t.path, t.finishedAt
				}
			}
		}
		s.mu.Unlock()
		f, err := os.Open(file)
		if file == "" || err != nil {
			s3Error(w, 404, "NoSuchKey", "The specified key does not exist.", "Key", strings.TrimPrefix(r.URL.Path, "/"))
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			s3Error(w, 500, "InternalError", "We encountered an internal error. Please try again.")
			return
		}
		size := fi.Size()
		errorPage, wrongLength := s.faults.storageMode()
		if errorPage {
			page := "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n"
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			io.WriteString(w, page)
			return
		}
		announced := size
		if wrongLength {
			announced = size + 1 // the object behaves as one byte longer, whose last byte never comes
		}
		rng, status := parseRange(r.Header.Get("Range"), announced)
		switch status {
		case rangeIgnored:
			r.Header.Del("Range") // S3 answers a malformed or multi-range request with the whole object
		case rangeUnsatisfiable:
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", announced))
			s3Error(w, 416, "InvalidRange", "The requested range is not satisfiable", "RangeRequested", r.Header.Get("Range"),
				"ActualObjectSize", strconv.FormatInt(announced, 10))
			return
		}
		if wrongLength {
			serveShort(w, f, size, rng, status == rangeOK)
			return
		}
		// Heroku's backups are multipart uploads: their ETag is not the content's MD5.
		sum := md5.Sum([]byte(uuid))
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%d"`, sum, max((size+(8<<20)-1)/(8<<20), 1)))
		w.Header().Set("Content-Type", "binary/octet-stream")
		w = s.faults.stalling(w, r)
		if after, ok := s.faults.takeCut(); ok {
			c := &cutWriter{ResponseWriter: w, left: after}
			http.ServeContent(c, r, "", modified, f)
			c.cut()
			return
		}
		http.ServeContent(w, r, "", modified, f)
	})
}

type rangeStatus int

const (
	rangeNone rangeStatus = iota
	rangeOK
	rangeIgnored
	rangeUnsatisfiable
)

type byteRange struct{ start, end int64 } // inclusive

// parseRange reads a Range header the way S3 does: one range of bytes=a-b, a- or -n.
func parseRange(h string, size int64) (byteRange, rangeStatus) {
	if h == "" {
		return byteRange{}, rangeNone
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return byteRange{}, rangeIgnored
	}
	as, bs, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, rangeIgnored
	}
	if as == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(bs, 10, 64)
		if err != nil || n < 0 {
			return byteRange{}, rangeIgnored
		}
		if n == 0 || size == 0 {
			return byteRange{}, rangeUnsatisfiable
		}
		return byteRange{max(size-n, 0), size - 1}, rangeOK
	}
	a, err := strconv.ParseInt(as, 10, 64)
	if err != nil || a < 0 {
		return byteRange{}, rangeIgnored
	}
	b := size - 1
	if bs != "" {
		if b, err = strconv.ParseInt(bs, 10, 64); err != nil || b < a {
			return byteRange{}, rangeIgnored
		}
	}
	if a >= size {
		return byteRange{}, rangeUnsatisfiable
	}
	return byteRange{a, min(b, size-1)}, rangeOK
}

// cutWriter passes left body bytes through, then drops the connection, as a reset would.
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

// cut sends what was written, then closes the connection under the response.
func (c *cutWriter) cut() {
	if c.gone {
		return
	}
	c.gone = true
	rc := http.NewResponseController(c.ResponseWriter)
	rc.Flush()
	if conn, buf, err := rc.Hijack(); err == nil {
		buf.Flush()
		conn.Close()
	}
}

// serveShort answers as if the object had one byte more than it has (Content-Length, and
// Content-Range's total): it sends what there is of the range, and closes the connection.
func serveShort(w http.ResponseWriter, f *os.File, size int64, rng byteRange, ranged bool) {
	start, end := int64(0), size // inclusive; size is the byte that does not exist
	if ranged {
		start, end = rng.start, rng.end
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if ranged {
		fmt.Fprintf(buf, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n", start, end, size+1)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\n")
	}
	fmt.Fprintf(buf, "Content-Length: %d\r\nContent-Type: binary/octet-stream\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", end-start+1)
	if n := min(end, size-1) - start + 1; n > 0 {
		io.Copy(buf, io.NewSectionReader(f, start, n))
	}
	buf.Flush()
}
