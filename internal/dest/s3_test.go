package dest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
)

func boolp(b bool) *bool { return &b }

// TestResolveS3: a destination's own parameters win, the global variables fill the rest, and
// keys=NAME reads NAME_ACCESS_KEY_ID / NAME_SECRET_ACCESS_KEY.
func TestResolveS3(t *testing.T) {
	cfg := config.Config{Region: "eu-west-1", S3ForcePathStyle: true, S3StorageClass: "STANDARD_IA", S3SSE: "aws:kms", S3SSEKMSKeyID: "arn:key"}
	s, err := ResolveS3(cfg, spec.Archive{Scheme: "s3", Bucket: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (S3Settings{Region: "eu-west-1", PathStyle: true, StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "arn:key"}); s != want {
		t.Errorf("global settings: %+v, want %+v", s, want)
	}

	t.Setenv("B2_ACCESS_KEY_ID", "b2-id")
	t.Setenv("B2_SECRET_ACCESS_KEY", "b2-secret")
	b2 := spec.Archive{Scheme: "s3", Bucket: "b", Endpoint: "https://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003",
		PathStyle: boolp(false), StorageClass: "STANDARD", SSE: "AES256", Keys: "B2"}
	s, err = ResolveS3(cfg, b2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (S3Settings{Endpoint: b2.Endpoint, Region: "eu-central-003", PathStyle: false, StorageClass: "STANDARD", SSE: "AES256",
		AccessKeyID: "b2-id", SecretAccessKey: "b2-secret"}); s != want {
		t.Errorf("own settings: %+v, want %+v", s, want)
	}
	os.Unsetenv("B2_SECRET_ACCESS_KEY")
	_, err = ResolveS3(cfg, b2)
	if err == nil || !strings.Contains(err.Error(), "s3://b: keys=B2 names the variables B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY") ||
		strings.Contains(err.Error(), "b2-id") {
		t.Errorf("half a pair: %v", err)
	}
}

// TestS3ClientNamesTheDestination: a destination's own endpoint follows the URL rule, and the
// error says which destination's endpoint= to change.
func TestS3ClientNamesTheDestination(t *testing.T) {
	a := spec.Archive{Scheme: "s3", Bucket: "b2-archive", Endpoint: "http://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003"}
	_, err := S3Client(context.Background(), config.Config{}, a)
	if err == nil || !strings.Contains(err.Error(), "set endpoint= of s3://b2-archive in ARCHIVE_URL to an https:// URL") {
		t.Errorf("plain http endpoint: %v", err)
	}
	a.Endpoint = "http://127.0.0.1:9000"
	if _, err := S3Client(context.Background(), config.Config{}, a); err != nil {
		t.Errorf("loopback endpoint refused: %v", err)
	}
}

func TestOnAWS(t *testing.T) {
	for ep, want := range map[string]bool{
		"": true, "https://s3.eu-west-1.amazonaws.com": true, "https://bucket.s3.cn-north-1.amazonaws.com.cn": true,
		"https://s3.eu-central-003.backblazeb2.com": false, "https://storage.googleapis.com": false,
		"http://127.0.0.1:9000": false, "https://amazonaws.com.evil.example": false,
	} {
		if OnAWS(ep) != want {
			t.Errorf("OnAWS(%q) = %v", ep, !want)
		}
	}
}
