package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Server is what the tests ask of any S3 server they start (MinIO, SeaweedFS): where it
// answers, its one key pair, clients of it and fresh buckets.
type s3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	mu        sync.Mutex
	seq       int
}

// newS3Server is a server to listen on 127.0.0.1:port with a fresh key pair.
func newS3Server(port int) s3Server {
	return s3Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "pgoffsite" + randomHex(4),
		SecretKey: randomHex(20), Region: "us-east-1"}
}

// Client is an S3 client with the server's key pair, path style. It is built without the SDK's
// shared configuration on purpose: these machines set AWS_CA_BUNDLE, which that path mishandles.
func (s *s3Server) Client(t testing.TB) *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket makes a fresh bucket with a unique name starting with prefix.
func (s *s3Server) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	name := fmt.Sprintf("%s-%d-%s", strings.ToLower(prefix), seq, randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	return name
}
