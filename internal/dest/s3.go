package dest

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// s3Kind is a bucket of S3 or an S3-compatible store: s3://bucket/optional/prefix, its
// settings from its own query parameters, else the global variables. It lives here rather than
// in s3store because its preflight reads the bucket's safety features through internal/bucket,
// whose tests use s3store.
type s3Kind struct{ s3store.Parser }

// Open opens the bucket with the uploader's credentials: they may write, look up markers and
// abort uploads, never read or delete.
func (s3Kind) Open(ctx context.Context, env spec.Env, a spec.Archive) (store.Store, store.Caps, error) {
	st, err := s3StoreFor(ctx, env, a)
	if err != nil {
		return nil, store.Caps{}, err
	}
	return st, st.Caps(), nil
}

// OpenReader opens the bucket with the reader's credentials (`pgoffsite policy --reader`).
func (s3Kind) OpenReader(ctx context.Context, env spec.Env, a spec.Archive) (store.Caps, error) {
	client, err := S3Client(ctx, env, a)
	if err != nil {
		return store.Caps{}, err
	}
	s, _ := s3store.SettingsOf(a)
	return s3store.NewReader(client, s.Bucket, s.Prefix).Caps(), nil
}

// UploadMemory: an upload holds its parts in flight and the one being filled.
func (s3Kind) UploadMemory(partSize int64, parts int) int64 { return int64(parts+1) * partSize }

// S3Settings is what one S3 destination uses: its own ARCHIVE_URL query parameters, else the
// global variables. The one place that rule lives; every command builds its S3 client from it.
type S3Settings struct {
	Endpoint     string // "" = the SDK's AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS
	Region       string
	PathStyle    bool
	StorageClass string
	SSE          string
	SSEKMSKeyID  string
	// Checksum is checksum=, auto made definite where it can be: AWS takes the strong
	// checksum, so there auto is sha256.
	Checksum s3store.Checksum
	// AccessKeyID and SecretAccessKey are the keys=NAME pair; both "" = the default AWS chain.
	AccessKeyID     string
	SecretAccessKey string
}

// ResolveS3 works out the effective settings of d, an S3 destination. Its error names the
// variables to set.
func ResolveS3(env spec.Env, d spec.Archive) (S3Settings, error) {
	a, ok := s3store.SettingsOf(d)
	if !ok {
		return S3Settings{}, fmt.Errorf("%s is not an S3 destination", d)
	}
	pathStyle, _ := strconv.ParseBool(env.Getenv(s3store.PathStyleVar)) // checked by the configuration
	s := S3Settings{
		Endpoint:     a.Endpoint,
		Region:       first(a.Region, env.Getenv(s3store.RegionVar)),
		PathStyle:    pathStyle,
		StorageClass: first(a.StorageClass, env.Getenv(s3store.StorageClassVar)),
		SSE:          first(a.SSE, env.Getenv(s3store.SSEVar)),
	}
	if a.PathStyle != nil {
		s.PathStyle = *a.PathStyle
	}
	s.Checksum = a.Checksum
	if (s.Checksum == "" || s.Checksum == s3store.ChecksumAuto) && OnAWS(first(EffectiveEndpoint(env, d), env.Getenv("AWS_ENDPOINT_URL"))) {
		s.Checksum = s3store.ChecksumSHA256
	}
	if s.SSE == "aws:kms" {
		s.SSEKMSKeyID = env.Getenv(s3store.SSEKMSKeyIDVar)
	}
	if a.Keys != "" {
		idVar, secretVar := s3store.KeyVars(a.Keys)
		s.AccessKeyID, s.SecretAccessKey = env.Getenv(idVar), env.Getenv(secretVar)
		if s.AccessKeyID == "" || s.SecretAccessKey == "" {
			return S3Settings{}, fmt.Errorf("%s: keys=%s names the variables %s and %s, and not both are set: set both to this provider's key pair",
				d, a.Keys, idVar, secretVar)
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

// EffectiveEndpoint is the endpoint d's requests go to: its endpoint=, else the global one; ""
// is AWS itself.
func EffectiveEndpoint(env spec.Env, d spec.Archive) string {
	a, _ := s3store.SettingsOf(d)
	return first(a.Endpoint, env.Getenv(s3store.EndpointVar))
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
func S3Client(ctx context.Context, env spec.Env, a spec.Archive) (*s3.Client, error) {
	s, err := ResolveS3(env, a)
	if err != nil {
		return nil, err
	}
	own, _ := s3store.SettingsOf(a)
	client, err := s3store.NewClient(ctx, s3store.ClientOptions{
		Endpoint: s.Endpoint, EndpointSource: "endpoint= of " + a.String() + " in ARCHIVE_URL",
		Region: s.Region, ForcePathStyle: s.PathStyle,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey,
		Checksum: s.Checksum,
		Dest:     s3err.Dest{Label: a.String(), Keys: own.Keys, RegionParam: own.Region != ""},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	return client, nil
}

// s3StoreFor opens destination a (an s3:// one) for writing archives.
func s3StoreFor(ctx context.Context, env spec.Env, a spec.Archive) (*s3store.Store, error) {
	s, err := ResolveS3(env, a)
	if err != nil {
		return nil, err
	}
	client, err := S3Client(ctx, env, a)
	if err != nil {
		return nil, err
	}
	return newS3Store(client, env, a, s), nil
}

// newS3Store is the uploader's store of destination d with its effective settings s.
func newS3Store(client *s3.Client, env spec.Env, d spec.Archive, s S3Settings) *s3store.Store {
	a, _ := s3store.SettingsOf(d)
	return s3store.New(client, s3store.Options{
		Bucket:       a.Bucket,
		Prefix:       a.Prefix,
		StorageClass: s.StorageClass,
		SSE:          s.SSE,
		SSEKMSKeyID:  s.SSEKMSKeyID,
		PartSize:     env.PartSize,
		Concurrency:  env.Parts,
		Checksum:     s.Checksum,
	})
}
