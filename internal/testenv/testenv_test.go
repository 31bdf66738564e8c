package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgres(t *testing.T) {
	p := StartPostgres(t)
	name, dsn := p.CreateDB(t, "probe")
	p.Exec(t, name, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 42);")
	if out, err := p.Query(name, "SELECT count(*) FROM t"); err != nil || out != "42" {
		t.Fatalf("count = %q, %v", out, err)
	}
	if !strings.Contains(dsn, name) || !strings.HasPrefix(dsn, "postgres://postgres@127.0.0.1:") {
		t.Errorf("dsn %q", dsn)
	}
	if _, err := p.Query(name, "SELECT * FROM nope"); err == nil {
		t.Error("a failing statement was not reported")
	}
}

func TestMinIO(t *testing.T) {
	m := StartMinIO(t)
	c := m.Client(t)
	b := m.CreateBucket(t, "probe")
	ctx := context.Background()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	// The open-upload check must see an open upload and stop seeing it once aborted.
	key := "dir/object.dump"
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.IncompleteUploads(t, b)) != 1 || m.IncompleteUploadsOf(t, b, key) != 1 {
		t.Fatalf("open upload not seen: %v", m.IncompleteUploads(t, b))
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: up.UploadId}); err != nil {
		t.Fatal(err)
	}
	if n := len(m.IncompleteUploads(t, b)); n != 0 || m.IncompleteUploadsOf(t, b, key) != 0 {
		t.Fatalf("aborted upload still seen: %d", n)
	}
}

func TestToxiproxy(t *testing.T) {
	x := StartToxiproxy(t)
	body := bytes.Repeat([]byte("x"), 100<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	p := x.Proxy(t, strings.TrimPrefix(srv.URL, "http://"))
	get := func() ([]byte, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + p.Listen)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	if got, err := get(); err != nil || len(got) != len(body) {
		t.Fatalf("through the proxy: %d bytes, %v", len(got), err)
	}
	toxic := p.AddToxic(t, "limit_data", "downstream", map[string]any{"bytes": 10000})
	if got, err := get(); err == nil && len(got) == len(body) {
		t.Fatal("limit_data did not cut the connection")
	}
	p.RemoveToxic(t, toxic)
	p.SetEnabled(t, false)
	if _, err := get(); err == nil {
		t.Fatal("a disabled proxy still answered")
	}
	p.SetEnabled(t, true)
	if got, err := get(); err != nil || len(got) != len(body) {
		t.Fatalf("after re-enabling: %d bytes, %v", len(got), err)
	}
}
