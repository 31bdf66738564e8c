// Package s3errtest is a stand-in for Amazon S3 that answers every request with one of the
// error answers AWS sends, status, headers and XML body as S3 writes them: for tests of what
// pgoffsite makes of each.
package s3errtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Answer is one error answer of S3's.
type Answer struct {
	Name   string
	Status int
	Header map[string]string
	Body   string
}

const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// The answers, as AWS sends them (request and host IDs as S3 shapes them).
var (
	AccessDenied = Answer{Name: "AccessDenied", Status: http.StatusForbidden,
		Body: head + `<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>6Q6SKFG1MW1DDN4A</RequestId><HostId>Xy0aT3zN6kM7vQ2bW9pR1cL5sD8fG4hJ0kL2mN6pQ8rS0tU4vW6xY8zA2bC4dE6fG8hJ0kL2mN4=</HostId></Error>`}
	InvalidAccessKeyID = Answer{Name: "InvalidAccessKeyId", Status: http.StatusForbidden,
		Body: head + `<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><RequestId>3L137NMKNB4R1BQ8</RequestId><HostId>kV2uO1hwXsR2T0vEoR8mQ3bP5cN7dL9fK1jH3gG5eD7cB9aZ1yX3wV5uT7sR9qP1oN3mL5kJ7iH=</HostId></Error>`}
	SignatureDoesNotMatch = Answer{Name: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Body: head + `<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20260101T000000Z
20260101/eu-west-1/s3/aws4_request
0c2f5a8e</StringToSign><SignatureProvided>4a6e9b1c</SignatureProvided><StringToSignBytes>41 57 53 34</StringToSignBytes><CanonicalRequest>PUT
/acme/pg/_pgoffsite-check/x.txt
</CanonicalRequest><CanonicalRequestBytes>50 55 54</CanonicalRequestBytes><RequestId>M1KZ2X7DQ4E5B3NT</RequestId><HostId>p9T8s7R6q5P4o3N2m1L0k9J8i7H6g5F4e3D2c1B0a9Z8y7X6w5V4u3T2s1R0q9P8o7N6m5L4k3J=</HostId></Error>`}
	NoSuchBucket = Answer{Name: "NoSuchBucket", Status: http.StatusNotFound,
		Body: head + `<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>acme-db-archive</BucketName><RequestId>R7J2C9V4XK1P8M3Q</RequestId><HostId>a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0e1F2g3H4i5J6k7L=</HostId></Error>`}
	PermanentRedirect = Answer{Name: "PermanentRedirect", Status: http.StatusMovedPermanently,
		Header: map[string]string{"X-Amz-Bucket-Region": "ap-southeast-2"},
		Body:   head + `<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>acme-db-archive.s3.ap-southeast-2.amazonaws.com</Endpoint><Bucket>acme-db-archive</Bucket><RequestId>B6FBDD4FB3177D5A</RequestId><HostId>hrJPjXlxss2KdQV9inlqyF7GdBY38UA+uV55H5SSRAhf4n2p/ykqg/89XjHZDZJFh96kNOGeiDA=</HostId></Error>`}
	AuthorizationHeaderMalformed = Answer{Name: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest,
		Header: map[string]string{"X-Amz-Bucket-Region": "us-east-2"}, // all a HEAD's answer tells
		Body:   head + `<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-2'</Message><Region>us-east-2</Region><RequestId>43EF790094C0617E</RequestId><HostId>2vdXX9VcRTMRuWyVVaKR3l2SSWvUEyMy6qblbjn0wIBdDrxLWGdcyb94l3+t27v/DwplBpKMrtM=</HostId></Error>`}
	SlowDown = Answer{Name: "SlowDown", Status: http.StatusServiceUnavailable,
		Body: head + `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>9D4C2F7A1B3E5G6H</RequestId><HostId>q1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8l9Z0x1C2v3B4n5M6q7W8e9R0t1Y2u3I4o5P6a7S=</HostId></Error>`}
)

// All are the answers above.
var All = []Answer{AccessDenied, InvalidAccessKeyID, SignatureDoesNotMatch, NoSuchBucket, PermanentRedirect, AuthorizationHeaderMalformed, SlowDown}

// Server is the stand-in; URL is its endpoint, Requests counts what it was asked.
type Server struct {
	*httptest.Server
	requests atomic.Int64
}

// Requests is how many requests the stand-in answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Serve starts a stand-in that answers every request with a, over plain http on loopback; it
// stops when the test ends.
func Serve(t testing.TB, a Answer) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(handler(s, a))
	t.Cleanup(s.Close)
	return s
}

// ServeTLS is Serve over https with a certificate nobody trusts.
func ServeTLS(t testing.TB, a Answer) *Server {
	s := &Server{}
	s.Server = httptest.NewTLSServer(handler(s, a))
	t.Cleanup(s.Close)
	return s
}

func handler(s *Server, a Answer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		io.Copy(io.Discard, r.Body)
		for k, v := range a.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Amz-Request-Id", "6Q6SKFG1MW1DDN4A")
		w.Header().Set("Server", "AmazonS3")
		if r.Method == http.MethodHead {
			w.WriteHeader(a.Status) // S3 answers HEAD without a body
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(a.Status)
		io.WriteString(w, a.Body)
	})
}
