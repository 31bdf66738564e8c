package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// s3Settings is what one S3 destination uses: its own ARCHIVE_URL query parameters, else the
// global variables. The one place that rule lives; every command builds its S3 client from it.
type s3Settings struct {
	Endpoint     string // "" = the SDK's AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS
	Region       string
	PathStyle    bool
	StorageClass string
	SSE          string
	SSEKMSKeyID  string
	// AccessKeyID and SecretAccessKey are the keys=NAME pair; both "" = the default AWS chain.
	AccessKeyID     string
	SecretAccessKey string
}

// resolveS3 works out a's effective settings. Its error names the variables to set.
func resolveS3(cfg config.Config, a config.Archive) (s3Settings, error) {
	s := s3Settings{
		Endpoint:     a.Endpoint,
		Region:       first(a.Region, cfg.Region),
		PathStyle:    cfg.S3ForcePathStyle,
		StorageClass: first(a.StorageClass, cfg.S3StorageClass),
		SSE:          first(a.SSE, cfg.S3SSE),
	}
	if a.PathStyle != nil {
		s.PathStyle = *a.PathStyle
	}
	if s.SSE == "aws:kms" {
		s.SSEKMSKeyID = cfg.S3SSEKMSKeyID
	}
	if a.Keys != "" {
		idVar, secretVar := keyVars(a.Keys)
		s.AccessKeyID, s.SecretAccessKey = os.Getenv(idVar), os.Getenv(secretVar)
		if s.AccessKeyID == "" || s.SecretAccessKey == "" {
			return s3Settings{}, fmt.Errorf("%s: keys=%s names the variables %s and %s, and not both are set: set both to this provider's key pair",
				a, a.Keys, idVar, secretVar)
		}
	}
	return s, nil
}

// keyVars are the variables keys=NAME names.
func keyVars(name string) (id, secret string) {
	return name + "_ACCESS_KEY_ID", name + "_SECRET_ACCESS_KEY"
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// effectiveEndpoint is the endpoint a's requests go to: its endpoint=, else the global one; ""
// is AWS itself.
func effectiveEndpoint(cfg config.Config, a config.Archive) string {
	return first(a.Endpoint, cfg.S3Endpoint)
}

// onAWS tells whether an endpoint is Amazon S3's own: none at all, or an amazonaws.com host.
// Features only AWS has (Glacier storage classes) are warned about elsewhere.
func onAWS(endpoint string) bool {
	if endpoint == "" {
		return true
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return strings.HasSuffix(h, ".amazonaws.com") || strings.HasSuffix(h, ".amazonaws.com.cn")
}

// s3ClientFor builds the S3 client of destination a (an s3:// one).
func s3ClientFor(ctx context.Context, cfg config.Config, a config.Archive) (*s3.Client, error) {
	s, err := resolveS3(cfg, a)
	if err != nil {
		return nil, err
	}
	client, err := s3store.NewClient(ctx, s3store.ClientOptions{
		Endpoint: s.Endpoint, EndpointSource: "endpoint= of " + a.String() + " in ARCHIVE_URL",
		Region: s.Region, ForcePathStyle: s.PathStyle,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	return client, nil
}

// s3StoreFor opens destination a (an s3:// one) for writing archives.
func s3StoreFor(ctx context.Context, cfg config.Config, a config.Archive) (*s3store.Store, error) {
	s, err := resolveS3(cfg, a)
	if err != nil {
		return nil, err
	}
	client, err := s3ClientFor(ctx, cfg, a)
	if err != nil {
		return nil, err
	}
	return newS3Store(client, cfg, a, s), nil
}

func newS3Store(client *s3.Client, cfg config.Config, a config.Archive, s s3Settings) *s3store.Store {
	return s3store.New(client, s3store.Options{
		Bucket:       a.Bucket,
		Prefix:       a.Prefix,
		StorageClass: s.StorageClass,
		SSE:          s.SSE,
		SSEKMSKeyID:  s.SSEKMSKeyID,
		PartSize:     cfg.PartSize,
		Concurrency:  cfg.UploadConcurrency,
	})
}

// pickS3Destination is the S3 destination a bucket command works on: the one --destination
// names (N, 1-based in ARCHIVE_URL's order, or its s3://bucket/prefix), or the only S3 one.
// With several and no choice it refuses, listing them, rather than guess which bucket to change.
func pickS3Destination(cfg config.Config, choice string) (config.Archive, error) {
	return pickDestination(cfg, choice, "s3")
}

// pickReadDestination is the destination verify and restore read from: the one --destination
// names, else the first ARCHIVE_URL names (reading changes nothing, so no choice is forced).
func pickReadDestination(cfg config.Config, choice string) (config.Archive, error) {
	if strings.TrimSpace(choice) == "" && len(cfg.Archives) > 0 {
		return cfg.Archives[0], nil
	}
	return pickDestination(cfg, choice, "")
}

// loadForReading loads the configuration of a command that reads archives (verify, restore),
// with Archive the destination --destination picks.
func loadForReading(choice, command string, opts ...config.Option) (config.Config, error) {
	cfg, err := config.LoadFor(command, opts...)
	if err != nil {
		return cfg, err
	}
	a, err := pickReadDestination(cfg, choice)
	if err != nil {
		return cfg, fmt.Errorf("  --destination: %w", err)
	}
	cfg.Archive = a
	return cfg, nil
}

// pickDestination picks by --destination among ARCHIVE_URL's destinations of scheme ("" any).
func pickDestination(cfg config.Config, choice, scheme string) (config.Archive, error) {
	kinds, ones := "destinations", "destinations"
	if scheme == "s3" {
		kinds, ones = "S3 destinations", "S3 ones"
	}
	var eligible []int
	for i, a := range cfg.Archives {
		if scheme == "" || a.Scheme == scheme {
			eligible = append(eligible, i)
		}
	}
	list := func() string {
		var b strings.Builder
		for _, i := range eligible {
			fmt.Fprintf(&b, "\n  --destination %d   (or --destination %s)", i+1, cfg.Archives[i])
		}
		return b.String()
	}
	choice = strings.TrimSpace(choice)
	switch {
	case len(eligible) == 0:
		return config.Archive{}, fmt.Errorf("ARCHIVE_URL names no s3:// destination: this command works on S3 buckets")
	case choice == "" && len(eligible) == 1:
		return cfg.Archives[eligible[0]], nil
	case choice == "":
		return config.Archive{}, fmt.Errorf("ARCHIVE_URL names %d %s: say which with one of%s", len(eligible), kinds, list())
	}
	if n, err := strconv.Atoi(choice); err == nil {
		if n < 1 || n > len(cfg.Archives) {
			return config.Archive{}, fmt.Errorf("--destination %d: ARCHIVE_URL names %d destination(s); the %s are%s", n, len(cfg.Archives), ones, list())
		}
		if a := cfg.Archives[n-1]; scheme != "" && a.Scheme != scheme {
			return config.Archive{}, fmt.Errorf("--destination %d is %s, not an S3 bucket; the %s are%s", n, a, ones, list())
		}
		return cfg.Archives[n-1], nil
	}
	want := strings.TrimRight(choice, "/")
	var found []int
	for _, i := range eligible {
		if cfg.Archives[i].String() == want {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return config.Archive{}, fmt.Errorf("--destination %s is not one of ARCHIVE_URL's %s:%s", choice, kinds, list())
	case 1:
		return cfg.Archives[found[0]], nil
	}
	// The same bucket and prefix at two endpoints: two providers, told apart by number only.
	return config.Archive{}, fmt.Errorf("--destination %s names %d destinations (the same bucket at different endpoints): give its number instead:%s", choice, len(found), list())
}
