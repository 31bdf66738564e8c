package s3store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/stall"
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

// TestNewClientOwnEndpointAndKeys: a client given its own endpoint and key pair uses them, not
// the chain's AWS_ENDPOINT_URL_S3 and AWS_ACCESS_KEY_ID, which belong to another provider.
func TestNewClientOwnEndpointAndKeys(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "https://s3.other.example")
	client, err := NewClient(context.Background(), ClientOptions{
		Endpoint: "https://s3.eu-central-003.backblazeb2.com", Region: "eu-central-003",
		AccessKeyID: "B2KEYID", SecretAccessKey: "b2-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	o := client.Options()
	if o.BaseEndpoint == nil || *o.BaseEndpoint != "https://s3.eu-central-003.backblazeb2.com" {
		t.Errorf("endpoint = %v", o.BaseEndpoint)
	}
	if o.Region != "eu-central-003" {
		t.Errorf("region = %q", o.Region)
	}
	if _, ok := o.HTTPClient.(*stall.Client); !ok {
		t.Errorf("HTTP client %T: the stall watchdog is not on it", o.HTTPClient)
	}
	creds, err := o.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "B2KEYID" || creds.SecretAccessKey != "b2-secret" {
		t.Errorf("credentials = %q: the chain's were used", creds.AccessKeyID)
	}

	// Without them, the chain's apply as before.
	client, err = NewClient(context.Background(), ClientOptions{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	creds, _ = client.Options().Credentials.Retrieve(context.Background())
	if ep := client.Options().BaseEndpoint; ep == nil || *ep != "https://s3.other.example" || creds.AccessKeyID != "AKIAEXAMPLE" {
		t.Errorf("chain's endpoint %v, key %q", ep, creds.AccessKeyID)
	}
}

// TestNewClientOwnEndpointRules: the endpoint option follows the URL rule and names its source;
// half a key pair is refused.
func TestNewClientOwnEndpointRules(t *testing.T) {
	isolateAWSEnv(t)
	for _, c := range []struct {
		o    ClientOptions
		want string // "" = accepted
	}{
		{ClientOptions{Endpoint: "http://s3.example.com", EndpointSource: "endpoint= of s3://b", Region: "x"}, "uses plain http: credentials and archives would cross the network unencrypted; set endpoint= of s3://b to an https:// URL"},
		{ClientOptions{Endpoint: "ftp://s3.example.com", Region: "x"}, "set the endpoint option to an https:// URL"},
		{ClientOptions{Endpoint: "s3.example.com", EndpointSource: "endpoint= of s3://b"}, "endpoint from endpoint= of s3://b is not an absolute URL"},
		{ClientOptions{Endpoint: "http://127.0.0.1:9000"}, ""},
		{ClientOptions{Region: "x", AccessKeyID: "only-the-id"}, "give both keys"},
		{ClientOptions{Region: "x", SecretAccessKey: "only-the-secret"}, "give both keys"},
	} {
		_, err := NewClient(context.Background(), c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v refused: %v", c.o.Endpoint, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: err = %v, want %q", c.o.Endpoint, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "only-the-") {
			t.Errorf("error shows a key: %v", err)
		}
	}
}
