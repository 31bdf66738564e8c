package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithylog "github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
	"github.com/pgoffsite/pgoffsite/internal/s3err"
	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// ClientOptions adjust the S3 client built from the SDK's default configuration chain. The
// fields a second provider needs (Endpoint, Region, static keys) override the chain for this
// client only, so that two clients in one process can talk to two providers with two key pairs.
type ClientOptions struct {
	Region         string // overrides AWS_REGION / the shared config when set
	ForcePathStyle bool   // bucket in the path rather than the host name (most S3-compatible stores)
	// Endpoint overrides AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for this client, e.g.
	// https://s3.eu-central-003.backblazeb2.com; "" keeps the chain's (AWS when none).
	Endpoint string
	// EndpointSource names where Endpoint came from, for its error messages (default "the
	// endpoint option").
	EndpointSource string
	// AccessKeyID and SecretAccessKey, when both set, are the credentials: the default chain
	// (AWS_ACCESS_KEY_ID, shared files, instance roles) is not consulted for them.
	AccessKeyID     string
	SecretAccessKey string
	// Stall bounds each request's silence (default 30 s without body bytes moving, 60 s without
	// response headers): a store that stops answering with the connection open has the request
	// cancelled and retried, instead of holding the upload, and its parts, forever.
	Stall stall.Options
	// MaxAttempts is how often a request is tried; default 10 (an upload's request that stalls
	// is retried at most twice: see uploadStallRetries).
	MaxAttempts int
	// Checksum is the destination's checksum= (default auto): the SDK's own checksum settings
	// follow from it, set here so that a later SDK's defaults cannot change what is sent.
	Checksum Checksum
	// Dest names the destination in the client's errors, each explained by its class
	// (s3err.Annotate); NewClient fills in the region and where the endpoint comes from.
	Dest s3err.Dest
}

// NewClient builds an S3 client from the SDK's default chain: credentials from the environment or
// shared files, and the endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL — each unless o
// gives its own. A plain http:// endpoint is refused unless its host is loopback, because
// credentials and archives would cross the network unencrypted.
func NewClient(ctx context.Context, o ClientOptions) (*s3.Client, error) {
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		return nil, errors.New("s3: an access key ID without its secret access key (or the reverse): give both keys of the pair")
	}
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	source := "AWS_ENDPOINT_URL_S3"
	if o.Endpoint != "" {
		source = o.EndpointSource
		if source == "" {
			source = "the endpoint option"
		}
		// Checked before anything is loaded: a bad endpoint is a configuration mistake, and
		// an http:// one must not receive even a signed request.
		if err := checkEndpoint(o.Endpoint, source); err != nil {
			return nil, err
		}
	}
	// The SDK's own HTTP client is kept: it honours AWS_CA_BUNDLE, which a plain *http.Client
	// passed here would make LoadDefaultConfig reject.
	// A nightly job must ride out a store that is unreachable for seconds: more attempts than the
	// SDK's default three, and no retry quota (parts in flight would exhaust it together).
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 10
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = 20 * time.Second
			o.RateLimiter = ratelimit.None
			// A certificate nobody trusts does not heal within a retry: said at once.
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if s3err.Of(err) == s3err.Untrusted {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, o.Retryables...)
		})
	}))
	opts = append(opts, config.WithLogger(sdkLogger{}))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	dest := o.Dest
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.APIOptions = append(so.APIOptions, s3err.Annotate(&dest))
		so.UsePathStyle = o.ForcePathStyle
		so.RequestChecksumCalculation, so.ResponseChecksumValidation = sdkChecksums(o.Checksum)
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		// The SDK's client (with AWS_CA_BUNDLE applied) has no response timeout at all: every
		// attempt goes through the stall watchdog, whose error the SDK's retryer retries.
		so.HTTPClient = &stall.Client{Next: so.HTTPClient, Options: o.Stall}
		// S3-compatible stores mostly ignore the region, but the SDK cannot sign without one.
		if so.Region == "" && so.BaseEndpoint != nil {
			so.Region = "us-east-1"
		}
	})
	co := client.Options()
	if co.BaseEndpoint != nil {
		if err := checkEndpoint(*co.BaseEndpoint, source); err != nil {
			return nil, err
		}
		dest.Endpoint = source
	}
	dest.Region = co.Region
	if co.Region == "" {
		return nil, fmt.Errorf("s3: no AWS region configured: set AWS_REGION (or the region option)")
	}
	return client, nil
}

// sdkChecksums are the SDK's checksum settings for a destination's checksum=. The store computes
// every upload's checksum itself, so the SDK adds none where an operation does not require one.
// Reads ask the store for the object's stored checksum (x-amz-checksum-mode) only where the
// destination sends the headers for certain: a store that refuses them refuses that one too.
func sdkChecksums(c Checksum) (aws.RequestChecksumCalculation, aws.ResponseChecksumValidation) {
	if c == ChecksumSHA256 || c == ChecksumCRC32C {
		return aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenSupported
	}
	return aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired
}

// checkEndpoint applies the URL rule (https, or http to loopback only) to an endpoint; source
// names the setting the user must change.
func checkEndpoint(endpoint, source string) error {
	u, err := url.Parse(endpoint)
	if err == nil {
		err = netguard.Check(u)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netguard.ErrPlainHTTP):
		return fmt.Errorf("s3: endpoint %s uses plain http: credentials and archives would cross the network unencrypted; set %s to an https:// URL (http is allowed only for loopback hosts)", u.Redacted(), source)
	case errors.Is(err, netguard.ErrScheme):
		return fmt.Errorf("s3: endpoint %s has scheme %q: set %s to an https:// URL", u.Redacted(), u.Scheme, source)
	}
	if source == "AWS_ENDPOINT_URL_S3" {
		source = "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL"
	}
	return fmt.Errorf("s3: endpoint from %s is not an absolute URL: set it like https://host", source)
}

// sdkLogger puts the SDK's own warnings (say, an answer without a checksum it can validate) into
// the run's log, with the target's fields from the request's context, rather than as bare "SDK"
// lines on stderr that bypass the log format and its secret scrubber.
type sdkLogger struct{ log *zerolog.Logger }

func (l sdkLogger) Logf(c smithylog.Classification, format string, v ...any) {
	if l.log == nil {
		return // no request's context: nothing to attach it to
	}
	ev := l.log.Debug()
	if c == smithylog.Warn {
		ev = l.log.Warn()
	}
	ev.Str("source", "aws-sdk").Msgf(format, v...)
}

func (sdkLogger) WithContext(ctx context.Context) smithylog.Logger {
	return sdkLogger{log: zerolog.Ctx(ctx)}
}
