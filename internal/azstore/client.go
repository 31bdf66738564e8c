package azstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Credentials are one destination's: a SAS token or the account key (a SAS wins when both are
// given, as with az).
type Credentials struct {
	SASToken   string
	AccountKey string
}

// Options open a container.
type Options struct {
	Settings    Settings
	Credentials Credentials
	// PartSize is the size of each staged block; Parts how many are staged at once.
	PartSize int64
	Parts    int
	// Stall are the silences tolerated on a connection (stall.Options' defaults when zero).
	Stall stall.Options
}

// perms is what the credentials may do: a SAS's sp= field, everything for an account key.
type perms struct{ read, list, create, write, delete bool }

// sasPerms reads the permissions a SAS token grants (sp=racwdl...). A stored access policy
// (si=) may grant more than sp= says: then only what sp= names is declared, the safe side.
func sasPerms(token string) perms {
	q, _ := url.ParseQuery(strings.TrimPrefix(token, "?"))
	sp := q.Get("sp")
	return perms{read: strings.Contains(sp, "r"), list: strings.Contains(sp, "l"), create: strings.Contains(sp, "c"),
		write: strings.Contains(sp, "w"), delete: strings.Contains(sp, "d")}
}

// tryTimeout bounds one try of one request: a block of the largest part size on a slow link.
// Silence is caught sooner, by the stall watcher.
const tryTimeout = 10 * time.Minute

// newContainer builds the container's client and says what its credentials may do. Requests go
// through a stall watcher; the SDK retries a failed try three times.
func newContainer(o Options) (*container.Client, perms, *scrub.Redactor, error) {
	s, c := o.Settings, o.Credentials
	red := scrub.New(c.SASToken, c.AccountKey)
	httpClient := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: stall.DefaultHeader,
		MaxIdleConnsPerHost:   max(o.Parts, 2) + 2,
		IdleConnTimeout:       90 * time.Second,
	}}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &stall.Client{Next: bodyFence{httpClient}, Options: o.Stall},
		Retry:     policy.RetryOptions{MaxRetries: 3, TryTimeout: tryTimeout},
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}}
	containerURL := s.ServiceURL() + "/" + s.Container
	switch {
	case c.SASToken != "":
		cl, err := container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(strings.TrimSpace(c.SASToken), "?"), opts)
		if err != nil {
			return nil, perms{}, nil, fmt.Errorf("%s: the SAS token cannot be used: %s", s.Location(), red.Scrub(err.Error()))
		}
		return cl, sasPerms(c.SASToken), red, nil
	case c.AccountKey != "":
		cred, err := container.NewSharedKeyCredential(s.Account, strings.TrimSpace(c.AccountKey))
		if err != nil {
			sasVar, keyVar := CredentialVars(s.Keys)
			return nil, perms{}, nil, fmt.Errorf("%s: %s is not a storage account key (base64): set it to a key `az storage account keys list` prints, or set %s instead",
				s.Location(), keyVar, sasVar)
		}
		cl, err := container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
		if err != nil {
			return nil, perms{}, nil, fmt.Errorf("%s: %s", s.Location(), red.Scrub(err.Error()))
		}
		return cl, perms{read: true, list: true, create: true, write: true, delete: true}, red, nil
	default:
		sasVar, keyVar := CredentialVars(s.Keys)
		return nil, perms{}, nil, fmt.Errorf("%s: neither %s nor %s is set: set %s to a SAS token that may create blobs, made with `%s`",
			s.Location(), sasVar, keyVar, sasVar, SASCommand(s, "c"))
	}
}

// Error is a failed call to Azure, said without the credentials: a SAS token travels in every
// URL, and the SDK's errors quote URLs. It matches store.ErrExists and the context's errors as
// the call's error did, and nothing else, so that no caller unwraps the raw message.
type Error struct {
	msg  string
	is   []error
	Code string // Azure's error code (AuthorizationPermissionMismatch, ...), "" for a network error
	// Block says the call staged a block: what an archive larger than one part needs besides
	// the Put Blob a small one is.
	Block bool
}

func (e *Error) Error() string   { return e.msg }
func (e *Error) Unwrap() []error { return e.is }

// wrapErr says what failed (doing) and why, scrubbed of the credentials red knows and of every
// URL's query string.
func wrapErr(red *scrub.Redactor, doing string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{}
	for _, sentinel := range []error{context.Canceled, context.DeadlineExceeded, store.ErrExists} {
		if errors.Is(err, sentinel) {
			e.is = append(e.is, sentinel)
		}
	}
	var re *azcore.ResponseError
	why := err.Error()
	if errors.As(err, &re) {
		e.Code = re.ErrorCode
		why = fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
		if fix := fixFor(bloberror.Code(re.ErrorCode)); fix != "" {
			why += ": " + fix
		}
		if re.ErrorCode == "" && (re.RawResponse == nil || re.RawResponse.Header.Get("x-ms-request-id") == "") {
			why = fmt.Sprintf("%d: %s", re.StatusCode, errNotAzure)
		}
	}
	e.msg = red.Scrub(doing + ": " + why)
	return e
}

// fixFor says what to do about the errors a misconfigured destination meets.
func fixFor(code bloberror.Code) string {
	switch code {
	case bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationFailure:
		return "the SAS token does not allow this: backup needs create (c), verify, status, list and restore read and list (rl)"
	case bloberror.AuthenticationFailed:
		return "the SAS token or account key was refused: check it is this account's and has not expired"
	case bloberror.ContainerNotFound:
		return "the container does not exist: create it with `az storage container create`"
	}
	return ""
}
