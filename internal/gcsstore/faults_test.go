package gcsstore

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/faulttest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// recorder stands between Toxiproxy and fake-gcs-server and counts what the upload did: the
// chunks Google acknowledged and the cancels of sessions, with their answers.
type recorder struct {
	mu      sync.Mutex
	chunks  int   // chunks sent to a session and taken
	cancels []int // the answers to DELETEs on a session
}

func (r *recorder) counts() (chunks int, cancels []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunks, append([]int(nil), r.cancels...)
}

func startRecorder(t *testing.T, upstream string) (*recorder, string) {
	rec := &recorder{}
	target, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps Host: the session URI points back here
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("upload_id") == "" {
			return nil
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		switch {
		case resp.Request.Method == http.MethodDelete:
			rec.cancels = append(rec.cancels, resp.StatusCode)
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPermanentRedirect:
			rec.chunks++
		}
		return nil
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the resets and stalls are the test's doing
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return rec, strings.TrimPrefix(srv.URL, "http://")
}

// The fault suite on fake-gcs-server through Toxiproxy (and the recorder), in chunks of 256
// KiB, a chunk's retries bounded by 10 s: every failed upload says what became of its session
// and never shows the session's address; a cancelled one sends the session's DELETE, which Google
// (and the emulator) answer 499.
func TestFaults(t *testing.T) {
	recs := map[*Store]*recorder{}
	faulttest.Run(t, faulttest.Kind{
		Open: func(t *testing.T) faulttest.Instance {
			srv := testenv.StartFakeGCS(t)
			bucket := srv.CreateBucket(t, "faults")
			rec, recAddr := startRecorder(t, srv.Host)
			p := testenv.StartToxiproxy(t).Proxy(t, recAddr)
			st, err := Open(context.Background(), Options{Bucket: bucket, Prefix: "pg", Endpoint: "http://" + p.Listen, ChunkSize: 256 << 10,
				Stall: stall.Options{Idle: 500 * time.Millisecond, Header: time.Second}, RetryDeadline: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			recs[st] = rec
			return faulttest.Instance{Store: st, Proxy: p, Direct: openTest(t, srv, bucket, "pg"),
				Reached: func() bool { n, _ := rec.counts(); return n > 0 }}
		},
		Size: 2<<20 + 77, After: 768 << 10,
		Says:   []string{"session"},
		Hidden: []string{"upload_id"},
		OpenAt: func(t *testing.T, endpoint string) store.Store {
			s, err := Open(context.Background(), Options{Bucket: "acme", Prefix: "pg", Endpoint: endpoint, ChunkSize: 256 << 10, RetryDeadline: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		NotTheStore: "did not come from Google Cloud Storage",
		Cancelled: func(t *testing.T, i faulttest.Instance, _ string) {
			if _, cancels := recs[i.Store.(*Store)].counts(); len(cancels) != 1 || cancels[0] != statusClientClosed {
				t.Errorf("the session's cancels were answered %v, want one 499", cancels)
			}
		},
	})
}
