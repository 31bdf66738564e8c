package herokusim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// openBody starts a GET and returns its response with the body still unread.
func openBody(t *testing.T, ctx context.Context, u, rng string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readAsync reads the rest of body in the background and delivers what it got.
func readAsync(body io.Reader) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, body)
		done <- err
	}()
	return done
}

func TestStallStorage(t *testing.T) {
	st := newStored(t)
	u, _ := publicURL(t, st.data, "shop", st.num)
	f := st.s.Faults()
	defer f.Reset()

	t.Run("sends its bytes, then nothing, until the client leaves", func(t *testing.T) {
		f.StallStorage(1000, 1)
		ctx, cancel := context.WithCancel(t.Context())
		resp := openBody(t, ctx, u, "bytes=500-")
		first := make([]byte, 1000)
		if _, err := io.ReadFull(resp.Body, first); err != nil || resp.StatusCode != 206 || !bytes.Equal(first, st.dump[500:1500]) {
			t.Fatalf("status %d, err %v", resp.StatusCode, err)
		}
		done := readAsync(resp.Body)
		select {
		case err := <-done:
			t.Fatalf("the stalled body ended on its own: %v", err)
		case <-time.After(300 * time.Millisecond): // it must still be open and silent
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the stalled body did not end when the client left")
		}
		if a := mustGet(t, "GET", u); !bytes.Equal(a.body, st.dump) { // the knob is used up
			t.Fatalf("after the stall: %d bytes", len(a.body))
		}
	})

	t.Run("before the first body byte, released by Reset", func(t *testing.T) {
		f.StallStorage(0, 1)
		resp := openBody(t, t.Context(), u, "bytes=0-99")
		if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 0-99/100000" {
			t.Fatalf("status %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
		}
		done := readAsync(resp.Body)
		select {
		case err := <-done:
			t.Fatalf("the stalled body ended on its own: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		f.Reset()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a released stall looked like a complete body")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Reset did not end the stall")
		}
	})
}
