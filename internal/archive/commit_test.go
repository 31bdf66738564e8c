package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/store"
)

// lingeringStore takes the whole stream, then holds on to it as an S3 upload with parts still
// in flight does, until its context ends.
type lingeringStore struct{ took chan struct{} }

func (s lingeringStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	close(s.took)
	<-ctx.Done()
	return ctx.Err()
}

func (lingeringStore) Location(key string) string { return "s3://slow/" + key }

// dirDestination is a real directory, which may delete what it holds.
func dirDestination(t *testing.T) (Destination, string) {
	dir := t.TempDir()
	fs, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return Destination{Name: "file://" + dir, Store: fs, Remove: fs}, dir
}

// SIGTERM after the dump is committed at one destination, while another still uploads: the
// committed dump gets its manifest all the same (the store refuses a cancelled context, as
// a directory does), and the job ends within the bounds.
func TestInterruptedAfterCommitStillWritesTheManifest(t *testing.T) {
	body := realDump(t)
	j, _, _, _ := newJob(t, body)
	fast, dir := dirDestination(t)
	slow := lingeringStore{took: make(chan struct{})}
	j.Destinations = []Destination{fast, {Name: "s3://slow", Store: slow}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result, 1)
	go func() { done <- j.Archive(ctx, Target{App: "shop", Database: "DATABASE_URL"}) }()
	select {
	case <-slow.took:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream never ended")
	}
	key := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b042", At: finished})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) { // poll interval
		if _, err := os.Stat(filepath.Join(dir, key)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dump was never committed at the fast destination")
		}
	}
	stopped := time.Now()
	cancel() // SIGTERM
	var res Result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not end after the interruption")
	}
	if took := time.Since(stopped); took > 10*time.Second {
		t.Errorf("the job took %s to end after the interruption", took)
	}
	if res.Err == nil || res.Copies[0].Err != nil || res.Copies[1].Err == nil {
		t.Fatalf("err %v, copies %+v", res.Err, res.Copies)
	}
	dump, err := os.ReadFile(filepath.Join(dir, key))
	if err != nil || !bytes.Equal(dump, body) {
		t.Fatalf("the committed dump: %v", err)
	}
	var m catalog.Manifest
	blob, err := os.ReadFile(filepath.Join(dir, catalog.ManifestKey(key)))
	if err != nil || json.Unmarshal(blob, &m) != nil {
		t.Fatalf("no manifest beside the committed dump: %v", err)
	}
	if m.SHA256 != res.SHA256 || m.Bytes != int64(len(body)) || m.Copies[0].Status != "archived" || m.Copies[1].Status != "failed" {
		t.Errorf("manifest %s %d %+v", m.SHA256, m.Bytes, m.Copies)
	}
}

// manifestless refuses every manifest (.json), as a store that fails right after the dump.
type manifestless struct{ store.Store }

var errNoManifest = errors.New("connection reset by peer")

func (s manifestless) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if strings.HasSuffix(obj.Key, ".json") {
		return errNoManifest
	}
	return s.Store.Put(ctx, obj, r)
}

// A dump whose manifest cannot be written is removed where the destination may delete; where
// it may not (an S3 uploader), the copy's error says where the dump stays and that status and
// verify report it.
func TestDumpWithoutManifest(t *testing.T) {
	body := realDump(t)
	for _, canRemove := range []bool{true, false} {
		j, _, _, logs := newJob(t, body)
		d, dir := dirDestination(t)
		d.Store = manifestless{d.Store}
		if !canRemove {
			d.Remove = nil
		}
		j.Destinations = []Destination{d}
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err == nil || !errors.Is(res.Err, errNoManifest) {
			t.Fatalf("remove %v: err %v", canRemove, res.Err)
		}
		_, err := os.Stat(filepath.Join(dir, res.Key))
		msg := res.Err.Error()
		if canRemove {
			if !os.IsNotExist(err) {
				t.Errorf("the dump without a manifest is still there: %v", err)
			}
			if !strings.Contains(msg, "the dump was removed again from "+filepath.Join(dir, res.Key)) {
				t.Errorf("err %s\nlog %s", msg, logs)
			}
			continue
		}
		if err != nil {
			t.Errorf("the dump is gone though the destination cannot delete: %v", err)
		}
		for _, want := range []string{"stays at " + filepath.Join(dir, res.Key) + " without a manifest", "pgoffsite status and verify report it"} {
			if !strings.Contains(msg, want) {
				t.Errorf("err lacks %q: %s", want, msg)
			}
		}
	}
}
