package archive

import (
	"bytes"
	"context"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// hangingStore takes a little of the stream and then nothing more, ignoring its context, as a
// directory on a disk that hangs: only the fan-out's own watch can get the others going again.
type hangingStore struct{ release chan struct{} }

func (h hangingStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if _, err := io.CopyN(io.Discard, r, 1<<10); err != nil {
		return err
	}
	<-h.release
	return errors.New("released")
}

func (hangingStore) Location(key string) string { return "/mnt/hung/" + key }

// slowStore takes the stream a chunk at a time with a pause between, each call to between
// standing for whatever the store does meanwhile.
type slowStore struct {
	between func(ctx context.Context) error
}

func (s slowStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	buf := make([]byte, fanoutChunk)
	for {
		_, err := io.ReadFull(r, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.between(ctx); err != nil {
			return err
		}
	}
}

func (slowStore) Location(key string) string { return "slow://" + key }

// A destination that stops taking bytes is detached after the silence limit, named in a warning
// that says what to check, while the other copies complete; the job does not wait for a store
// that ignores being stopped beyond its grace.
func TestStalledDestinationIsDetached(t *testing.T) {
	body := realDump(t)
	j, _, stores := threeDestinations(t, body)
	logs := &bytes.Buffer{}
	j.Log = j.Log.Output(logs)
	hung := hangingStore{release: make(chan struct{})}
	defer close(hung.release)
	j.Destinations[1] = Destination{Name: "file:///mnt/hung", Store: hung}
	j.timing = timing{detach: 2 * time.Second, stop: time.Second}
	began := time.Now()
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("the job took %s with a 2 s silence limit and a 1 s grace", took)
	}
	var se *StalledError
	if !errors.As(res.Err, &se) || !strings.Contains(res.Err.Error(), "1 of 3 copies failed") || !strings.Contains(res.Err.Error(), "file:///mnt/hung") {
		t.Fatalf("err = %v, want the hung destination stalled", res.Err)
	}
	for _, i := range []int{0, 2} {
		if !bytes.Equal(stores[i].Get(res.Key), body) || stores[i].Get(catalog.ManifestKey(res.Key)) == nil {
			t.Errorf("destination %d lacks the dump or its manifest", i)
		}
	}
	out := logs.String()
	for _, want := range []string{`"level":"warn"`, `"destination":"file:///mnt/hung"`, "stopped answering", `"hint":"check that file:///mnt/hung is up and reachable`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// A destination that takes the stream slowly but steadily, or whose requests keep moving bytes
// while it takes none of the stream (an upload sending its parts), is never detached.
func TestSlowButMovingDestinationIsKept(t *testing.T) {
	answer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 30 { // 3 s of an answer trickling in, longer than the silence limit, never quiet long
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer answer.Close()
	client := &stall.Client{Next: &http.Client{}}
	for name, between := range map[string]func(context.Context) error{
		"slow": func(ctx context.Context) error {
			select {
			case <-time.After(200 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		"requests": func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "GET", answer.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		},
	} {
		body := bytes.Repeat([]byte("pgoffsite"), 4*fanoutChunk/9)
		j, _, _, _ := newJob(t, body)
		mem := &memstore.Store{}
		j.Destinations = []Destination{{Name: "mem", Store: mem}, {Name: name, Store: slowStore{between: between}}}
		j.timing = timing{detach: 2 * time.Second, stop: time.Second}
		errs := j.putAll(context.Background(), store.Object{Key: "k.dump", Size: int64(len(body))}, bytes.NewReader(body))
		if errs[0] != nil || errs[1] != nil {
			t.Errorf("%s: errs %v", name, errs)
		}
	}
}
