package s3store

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// closedLoopback returns an http:// endpoint on a loopback port nothing listens on.
func closedLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestOwnEndpointAndKeysOnMinIO: a store on a second provider, reached through a client with its
// own endpoint and key pair, writes there while the default chain's variables name another
// endpoint and a key pair this server does not know. AWS_CA_BUNDLE stays set, as on the dyno.
func TestOwnEndpointAndKeysOnMinIO(t *testing.T) {
	e := startMinIO(t)
	isolateAWSEnv(t) // AWS_ACCESS_KEY_ID=AKIAEXAMPLE: unknown to MinIO
	t.Setenv("AWS_ENDPOINT_URL_S3", closedLoopback(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	own := ClientOptions{Endpoint: e.m.Endpoint, Region: e.m.Region, ForcePathStyle: true,
		AccessKeyID: e.m.AccessKey, SecretAccessKey: e.m.SecretKey, MaxAttempts: 2}
	client, err := NewClient(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("an archive on the second provider\n")
	st := New(client, Options{Bucket: e.bucket, Prefix: "second"})
	if err := st.Put(ctx, store.Object{Key: "own.txt", Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatalf("put with own endpoint and keys: %v", err)
	}
	if got := e.get(t, "second/own.txt"); !bytes.Equal(got, body) {
		t.Errorf("stored %q", got)
	}

	// The same store without its own keys uses the chain's, which MinIO refuses: the keys above
	// were what made the write work.
	chainKeys := own
	chainKeys.AccessKeyID, chainKeys.SecretAccessKey = "", ""
	client, err = NewClient(ctx, chainKeys)
	if err != nil {
		t.Fatal(err)
	}
	err = New(client, Options{Bucket: e.bucket, Prefix: "second"}).Put(ctx, store.Object{Key: "chain.txt", Size: int64(len(body))}, bytes.NewReader(body))
	if err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Errorf("with the chain's keys: err = %v, want InvalidAccessKeyId", err)
	}
}
