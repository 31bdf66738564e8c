package gcsstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/pgoffsite/pgoffsite/internal/stall"
)

// cancelTimeout bounds the request that cancels a failed upload's session: it runs after a
// SIGTERM too, within the run's grace.
const cancelTimeout = 10 * time.Second

// httpClient is the client every request goes through: a stall watcher on every connection,
// the session recorder, and Google's authentication (none with an emulator).
func httpClient(ctx context.Context, o Options) (*http.Client, error) {
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: stall.DefaultHeader,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	opts := []option.ClientOption{option.WithScopes(storage.ScopeFullControl)}
	switch {
	case len(o.CredentialsJSON) > 0:
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, o.CredentialsJSON))
	case o.Endpoint != "" || os.Getenv("STORAGE_EMULATOR_HOST") != "":
		opts = append(opts, option.WithoutAuthentication())
	}
	rt, err := htransport.NewTransport(ctx, sessionRecorder{&stall.Transport{Next: base, Options: o.Stall}}, opts...)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// session holds the URI of the resumable upload a Put started, for cancelling it. The URI is a
// bearer credential for the upload: it never appears in a message.
type session struct {
	mu  sync.Mutex
	uri string
}

type sessionKey struct{}

// withSession has the upload started with ctx recorded in the session returned.
func withSession(ctx context.Context) (context.Context, *session) {
	s := &session{}
	return context.WithValue(ctx, sessionKey{}, s), s
}

func (s *session) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uri
}

// errNotGoogle is an answer that did not come from Cloud Storage's JSON API, which never answers
// with an HTML page: a proxy's or a portal's, whatever its status, is not retried.
var errNotGoogle = errors.New("the answer did not come from Google Cloud Storage (an HTML page): a proxy or another server answers there; check ARCHIVE_URL's endpoint= and the network")

// sessionRecorder refuses HTML answers and records the Location Google answers a resumable
// upload's start with.
type sessionRecorder struct{ next http.RoundTripper }

func (r sessionRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, errNotGoogle)
	}
	// The start is the POST of uploadType=resumable without an upload_id: the chunks carry one.
	q := req.URL.Query()
	if err != nil || req.Method != http.MethodPost || q.Get("uploadType") != "resumable" || q.Has("upload_id") {
		return resp, err
	}
	if s, ok := req.Context().Value(sessionKey{}).(*session); ok && resp.StatusCode == http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			s.mu.Lock()
			s.uri = loc
			s.mu.Unlock()
		}
	}
	return resp, err
}

// statusClientClosed is Google's answer to the cancel of a resumable session.
const statusClientClosed = 499

// cancelSession ends the resumable upload at uri (a DELETE, as Google documents), so that
// nothing of it stays: the bytes sent are dropped at once instead of after a week. It runs on a
// context of its own: the run's may be cancelled already.
func (s *Store) cancelSession(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(stall.WithLabel(ctx, "cancel the upload session"), http.MethodDelete, uri, nil)
	if err != nil {
		return errors.New("the session's address is not a URL")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which carries the session's ID
		}
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case statusClientClosed, http.StatusNoContent, http.StatusOK, http.StatusNotFound, http.StatusGone:
		return nil
	}
	return fmt.Errorf("Google answered %s", resp.Status)
}
