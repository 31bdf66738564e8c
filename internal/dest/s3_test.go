package dest

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

func boolp(b bool) *bool { return &b }

// TestResolveS3: a destination's own parameters win, the global variables fill the rest, and
// keys=NAME reads NAME_ACCESS_KEY_ID / NAME_SECRET_ACCESS_KEY.
func TestResolveS3(t *testing.T) {
	cfg := env(map[string]string{"AWS_REGION": "eu-west-1", "S3_FORCE_PATH_STYLE": "true", "S3_STORAGE_CLASS": "STANDARD_IA", "S3_SSE": "aws:kms",
		"S3_SSE_KMS_KEY_ID": "arn:key", "B2_ACCESS_KEY_ID": "b2-id", "B2_SECRET_ACCESS_KEY": "b2-secret"})
	s, err := ResolveS3(cfg, s3store.Settings{Bucket: "a"}.Archive())
	if err != nil {
		t.Fatal(err)
	}
	if want := (S3Settings{Region: "eu-west-1", PathStyle: true, StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "arn:key", Checksum: s3store.ChecksumSHA256}); s != want {
		t.Errorf("global settings: %+v, want %+v", s, want)
	}

	own := s3store.Settings{Bucket: "b", Endpoint: "https://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003",
		PathStyle: boolp(false), StorageClass: "STANDARD", SSE: "AES256", Keys: "B2"}
	b2 := own.Archive()
	s, err = ResolveS3(cfg, b2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (S3Settings{Endpoint: own.Endpoint, Region: "eu-central-003", PathStyle: false, StorageClass: "STANDARD", SSE: "AES256",
		AccessKeyID: "b2-id", SecretAccessKey: "b2-secret"}); s != want {
		t.Errorf("own settings: %+v, want %+v", s, want)
	}
	_, err = ResolveS3(env(map[string]string{"B2_ACCESS_KEY_ID": "b2-id"}), b2)
	if err == nil || !strings.Contains(err.Error(), "s3://b: keys=B2 names the variables B2_ACCESS_KEY_ID and B2_SECRET_ACCESS_KEY") ||
		strings.Contains(err.Error(), "b2-id") {
		t.Errorf("half a pair: %v", err)
	}
	if _, err := ResolveS3(cfg, spec.Archive{Scheme: "file"}); err == nil {
		t.Error("settings of a directory resolved as a bucket's")
	}
}

// TestS3ClientNamesTheDestination: a destination's own endpoint follows the URL rule, and the
// error says which destination's endpoint= to change.
func TestS3ClientNamesTheDestination(t *testing.T) {
	s := s3store.Settings{Bucket: "b2-archive", Endpoint: "http://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003"}
	_, err := S3Client(context.Background(), env(nil), s.Archive())
	if err == nil || !strings.Contains(err.Error(), "set endpoint= of s3://b2-archive in ARCHIVE_URL to an https:// URL") {
		t.Errorf("plain http endpoint: %v", err)
	}
	s.Endpoint = "http://127.0.0.1:9000"
	if _, err := S3Client(context.Background(), env(nil), s.Archive()); err != nil {
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
