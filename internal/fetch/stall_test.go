package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// simBackup serves data as a Heroku backup from the simulator and returns the simulator and a
// URLFunc asking its Data API for signed URLs, as the job does.
func simBackup(t *testing.T, data []byte) (*herokusim.Sim, URLFunc) {
	t.Helper()
	const token = "test-token"
	sim := herokusim.New(herokusim.Options{Token: token})
	sim.AddApp("shop")
	addon := sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", "postgres://u:p@127.0.0.1:1/d")
	path := filepath.Join(t.TempDir(), "b.dump")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	num := sim.AddBackup("shop", addon, path)
	_, dataURL := herokusim.Serve(t, sim)
	return sim, func(ctx context.Context) (string, time.Time, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/client/v11/apps/shop/transfers/%d/actions/public-url", dataURL, num), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", time.Time{}, err
		}
		defer resp.Body.Close()
		var v struct {
			URL       string `json:"url"`
			ExpiresAt string `json:"expires_at"` // Heroku's "2006-01-02 15:04:05 -0700"
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return "", time.Time{}, fmt.Errorf("public-url: %s: %w", resp.Status, err)
		}
		exp, err := time.Parse("2006-01-02 15:04:05 -0700", v.ExpiresAt)
		return v.URL, exp, err
	}
}

// The signed-URL server stops sending mid-range with the connection left open: the range is
// abandoned and resumed at its byte, and the log says which range stalled on which host.
func TestStalledRangeIsResumed(t *testing.T) {
	data := randomData(t, 3<<20+12345)
	sim, urlFn := simBackup(t, data)
	defer sim.Faults().Reset()
	sim.Faults().StallStorage(300_000, 2)

	var logs testenv.Output
	ctx, cancel := context.WithTimeout(zerolog.New(&logs).WithContext(context.Background()), 30*time.Second)
	defer cancel()
	d := &Ranged{Options: Options{Concurrency: 2, ChunkSize: 1 << 20, Stall: stallOpts}}
	began := time.Now()
	rc, size, err := d.Open(ctx, urlFn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("size %d, %d bytes, equal %v, err %v", size, len(got), bytes.Equal(got, data), err)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Fatalf("the download took %s", took)
	}
	u, _, _ := urlFn(ctx)
	pu, _ := url.Parse(u)
	out := logs.String()
	for _, want := range []string{`"level":"warn"`, `"request":"download range 0-1048575"`, `"host":"` + pu.Host + `"`, `"stalled":"response body"`, `"bytes":300000`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "X-Amz-Signature") || strings.Contains(out, pu.RawQuery) {
		t.Errorf("the log shows the signed URL:\n%s", out)
	}
}

var stallOpts = stall.Options{Idle: 300 * time.Millisecond, Header: 2 * time.Second}

// A server that never sends a byte of the range fails the download in bounded time, saying so.
func TestRangeThatStaysStalledFails(t *testing.T) {
	data := randomData(t, 2<<20)
	sim, urlFn := simBackup(t, data)
	defer sim.Faults().Reset()
	sim.Faults().StallStorage(0, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &Ranged{Options: Options{ChunkSize: 1 << 20, MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, Stall: stallOpts}}
	_, _, err := d.Open(ctx, urlFn)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "range 0-1048575 failed 3 times") ||
		!strings.Contains(err.Error(), "sent no response body bytes") || strings.Contains(err.Error(), "X-Amz") {
		t.Fatalf("err %v (ctx %v)", err, ctx.Err())
	}
}
