package s3store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolateAWSEnv clears the AWS settings a developer's shell or the machine may carry.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
		t.Setenv(k, "") // registers the restore
		os.Unsetenv(k)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
}

func TestNewClientEndpoints(t *testing.T) {
	cases := []struct {
		env, value string
		region     string
		wantErr    string // "" = accepted
	}{
		{"AWS_ENDPOINT_URL_S3", "http://s3.example.com", "eu-west-1", "AWS_ENDPOINT_URL_S3"},
		{"AWS_ENDPOINT_URL", "http://10.1.2.3:9000", "eu-west-1", "plain http"},
		{"AWS_ENDPOINT_URL_S3", "ftp://s3.example.com", "eu-west-1", "scheme"},
		{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000", "", ""},
		{"AWS_ENDPOINT_URL_S3", "http://localhost:9000", "", ""},
		{"AWS_ENDPOINT_URL_S3", "http://[::1]:9000", "", ""},
		{"AWS_ENDPOINT_URL_S3", "https://s3.example.com", "", ""},
		{"", "", "eu-west-1", ""},
		{"", "", "", "region"},
	}
	for _, c := range cases {
		t.Run(c.env+"="+c.value+" region="+c.region, func(t *testing.T) {
			isolateAWSEnv(t)
			if c.env != "" {
				t.Setenv(c.env, c.value)
			}
			client, err := NewClient(context.Background(), ClientOptions{Region: c.region, ForcePathStyle: true})
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !client.Options().UsePathStyle {
					t.Error("ForcePathStyle not applied")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

func TestNewClientRegionOption(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_REGION", "us-west-2")
	client, err := NewClient(context.Background(), ClientOptions{Region: "eu-central-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := client.Options().Region; got != "eu-central-1" {
		t.Errorf("region = %q", got)
	}
}
