package dest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// s3Kind is a bucket of S3 or an S3-compatible store: s3://bucket/optional/prefix, its
// settings from its own query parameters, else the global variables.
type s3Kind struct{}

// Open opens the bucket with the uploader's credentials: they may write, look up markers and
// abort uploads, never read or delete.
func (s3Kind) Open(ctx context.Context, cfg config.Config, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := s3StoreFor(ctx, cfg, a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}

// OpenReader opens the bucket with the reader's credentials (`pgoffsite policy --reader`).
func (s3Kind) OpenReader(ctx context.Context, cfg config.Config, a spec.Archive) (store.Caps, error) {
	client, err := S3Client(ctx, cfg, a)
	if err != nil {
		return store.Caps{}, err
	}
	return s3store.NewReader(client, a.Bucket, a.Prefix).Caps(), nil
}

// S3Settings is what one S3 destination uses: its own ARCHIVE_URL query parameters, else the
// global variables. The one place that rule lives; every command builds its S3 client from it.
type S3Settings struct {
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

// ResolveS3 works out a's effective settings. Its error names the variables to set.
func ResolveS3(cfg config.Config, a spec.Archive) (S3Settings, error) {
	s := S3Settings{
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
		idVar, secretVar := s3store.KeyVars(a.Keys)
		s.AccessKeyID, s.SecretAccessKey = os.Getenv(idVar), os.Getenv(secretVar)
		if s.AccessKeyID == "" || s.SecretAccessKey == "" {
			return S3Settings{}, fmt.Errorf("%s: keys=%s names the variables %s and %s, and not both are set: set both to this provider's key pair",
				a, a.Keys, idVar, secretVar)
		}
	}
	return s, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// EffectiveEndpoint is the endpoint a's requests go to: its endpoint=, else the global one; ""
// is AWS itself.
func EffectiveEndpoint(cfg config.Config, a spec.Archive) string {
	return first(a.Endpoint, cfg.S3Endpoint)
}

// OnAWS tells whether an endpoint is Amazon S3's own: none at all, or an amazonaws.com host.
// Features only AWS has (Glacier storage classes) are warned about elsewhere.
func OnAWS(endpoint string) bool {
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

// S3Client builds the S3 client of destination a (an s3:// one).
func S3Client(ctx context.Context, cfg config.Config, a spec.Archive) (*s3.Client, error) {
	s, err := ResolveS3(cfg, a)
	if err != nil {
		return nil, err
	}
	client, err := s3store.NewClient(ctx, s3store.ClientOptions{
		Endpoint: s.Endpoint, EndpointSource: "endpoint= of " + a.String() + " in ARCHIVE_URL",
		Region: s.Region, ForcePathStyle: s.PathStyle,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey,
		Dest: s3err.Dest{Label: a.String(), Keys: a.Keys, RegionParam: a.Region != ""},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	return client, nil
}

// s3StoreFor opens destination a (an s3:// one) for writing archives.
func s3StoreFor(ctx context.Context, cfg config.Config, a spec.Archive) (*s3store.Store, error) {
	s, err := ResolveS3(cfg, a)
	if err != nil {
		return nil, err
	}
	client, err := S3Client(ctx, cfg, a)
	if err != nil {
		return nil, err
	}
	return NewS3Store(client, cfg, a, s), nil
}

func NewS3Store(client *s3.Client, cfg config.Config, a spec.Archive, s S3Settings) *s3store.Store {
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
