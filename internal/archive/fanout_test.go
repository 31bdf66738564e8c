package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// countingSource counts how often the backup is opened and how many bytes are read from it.
type countingSource struct {
	bytesSource
	opens atomic.Int32
	read  atomic.Int64
}

func (s *countingSource) Open(ctx context.Context, t Target) (Backup, error) {
	s.opens.Add(1)
	b, err := s.bytesSource.Open(ctx, t)
	body := b.Body
	b.Body = io.NopCloser(readFunc(func(p []byte) (int, error) {
		n, err := body.Read(p)
		s.read.Add(int64(n))
		return n, err
	}))
	return b, err
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// failingStore reads after bytes and then fails, as a destination that goes away mid-upload.
type failingStore struct {
	after int64
	err   error
}

func (f failingStore) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	if _, err := io.CopyN(io.Discard, r, f.after); err != nil {
		return err
	}
	return f.err
}

func (f failingStore) Location(key string) string { return "broken://" + key }

func threeDestinations(t *testing.T, body []byte) (*Job, *countingSource, []*memstore.Store) {
	t.Helper()
	j, _, _, _ := newJob(t, body)
	src := &countingSource{bytesSource: bytesSource{body: body}}
	j.Source = src
	stores := []*memstore.Store{{}, {}, {}}
	j.Destinations = nil
	for i, s := range stores {
		j.Destinations = append(j.Destinations, Destination{Name: []string{"s3://one", "s3://two", "sftp://u@h/three"}[i], Store: s})
	}
	return j, src, stores
}

// One backup, read once, lands byte-identical at every destination, each with a manifest that
// says where the other copies are.
func TestArchiveWritesEveryDestinationFromOneRead(t *testing.T) {
	body := realDump(t)
	for _, unknown := range []bool{false, true} {
		j, src, stores := threeDestinations(t, body)
		src.unknown = unknown
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if src.opens.Load() != 1 || src.read.Load() != int64(len(body)) {
			t.Errorf("unknown=%v: source opened %d times, %d bytes read; want once, %d", unknown, src.opens.Load(), src.read.Load(), len(body))
		}
		if len(res.Copies) != 3 {
			t.Fatalf("copies = %+v", res.Copies)
		}
		for i, s := range stores {
			if !bytes.Equal(s.Get(res.Key), body) {
				t.Errorf("destination %d holds %d bytes, want the dump's %d", i, len(s.Get(res.Key)), len(body))
			}
			var m catalog.Manifest
			if err := json.Unmarshal(s.Get(catalog.ManifestKey(res.Key)), &m); err != nil {
				t.Fatalf("destination %d manifest: %v", i, err)
			}
			if len(m.Copies) != 3 || m.Copies[2].Destination != "sftp://u@h/three" || m.Copies[2].Status != "archived" {
				t.Errorf("manifest copies = %+v", m.Copies)
			}
			if m.SHA256 != res.SHA256 || m.Bytes != int64(len(body)) {
				t.Errorf("manifest %s/%d, result %s", m.SHA256, m.Bytes, res.SHA256)
			}
		}
	}
}

// A destination that fails mid-upload is detached: the others complete, the target fails
// naming the failed copy, and the manifests record it.
func TestArchiveOneDestinationFailingDoesNotStopTheOthers(t *testing.T) {
	body := realDump(t)
	j, _, stores := threeDestinations(t, body)
	boom := errors.New("connection reset by peer")
	j.Destinations[1].Store = failingStore{after: int64(len(body) / 3), err: boom}
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || !errors.Is(res.Err, boom) || !strings.Contains(res.Err.Error(), "1 of 3 copies failed") ||
		!strings.Contains(res.Err.Error(), "s3://two") {
		t.Fatalf("err = %v, want one failed copy at s3://two", res.Err)
	}
	for _, i := range []int{0, 2} {
		if !bytes.Equal(stores[i].Get(res.Key), body) {
			t.Errorf("destination %d lacks the dump", i)
		}
		var m catalog.Manifest
		if err := json.Unmarshal(stores[i].Get(catalog.ManifestKey(res.Key)), &m); err != nil {
			t.Fatal(err)
		}
		if m.Copies[1].Status != "failed" {
			t.Errorf("manifest copies = %+v", m.Copies)
		}
	}
	if got := []string{res.Copies[0].Status(), res.Copies[1].Status(), res.Copies[2].Status()}; got[0] != "archived" || got[1] != "failed" || got[2] != "archived" {
		t.Errorf("copies = %v", got)
	}
	if res.Location != stores[0].Location(res.Key) {
		t.Errorf("location = %s, want the first copy that exists", res.Location)
	}
}

// Every destination failing at once must not leave the job waiting on a stream nobody reads.
func TestArchiveAllDestinationsFailing(t *testing.T) {
	body := realDump(t)
	j, _, _ := threeDestinations(t, body)
	for i := range j.Destinations {
		j.Destinations[i].Store = failingStore{after: int64(i * 1000), err: errors.New("down")}
	}
	done := make(chan Result)
	go func() { done <- j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"}) }()
	select {
	case res := <-done:
		if res.Err == nil || !strings.Contains(res.Err.Error(), "3 of 3 copies failed") {
			t.Fatalf("err = %v", res.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the job hung with every destination gone")
	}
}

// A damaged archive reaches no destination: the check's verdict is every store's read error.
func TestArchiveDamagedReachesNoDestination(t *testing.T) {
	body := bytes.Clone(realDump(t))
	body = body[:len(body)-40] // cut short: the last table's data ends early
	j, _, stores := threeDestinations(t, body)
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err == nil || strings.Contains(res.Err.Error(), "copies failed") {
		t.Fatalf("err = %v, want the damage said once", res.Err)
	}
	for i, s := range stores {
		if s.Len() != 0 {
			t.Errorf("destination %d holds %d objects, want none", i, s.Len())
		}
	}
}

// A backup archived at some destinations by an earlier run is added where it is missing.
func TestArchiveFillsMissingCopies(t *testing.T) {
	body := realDump(t)
	j, _, stores := threeDestinations(t, body)
	first := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	j.Destinations[2].Store = &memstore.Store{}
	res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil || res.AlreadyArchived {
		t.Fatalf("err = %v, already = %v", res.Err, res.AlreadyArchived)
	}
	if !res.Copies[0].AlreadyArchived || !res.Copies[1].AlreadyArchived || res.Copies[2].AlreadyArchived {
		t.Errorf("copies = %+v", res.Copies)
	}
	if got := j.Destinations[2].Store.(*memstore.Store).Get(res.Key); !bytes.Equal(got, body) {
		t.Errorf("the missing copy was not made")
	}
	again := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
	if again.Err != nil || !again.AlreadyArchived {
		t.Errorf("third run: err = %v, already = %v", again.Err, again.AlreadyArchived)
	}
	_ = stores
}

// With recipients every destination receives the same age ciphertext; the manifest holds the
// recipients, the ciphertext's hash and size, and the plaintext's hash and structure; and the
// ciphertext decrypts to the exact dump.
func TestArchiveEncryptsForEveryDestination(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recips, err := agecrypt.ParseRecipients(id.Recipient().String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agecrypt.ParseIdentities(id.String())
	if err != nil {
		t.Fatal(err)
	}
	body := realDump(t)
	for _, unknown := range []bool{false, true} {
		j, src, stores := threeDestinations(t, body)
		src.unknown = unknown
		j.Encrypt = recips
		res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if !strings.HasSuffix(res.Key, ".dump.age") {
			t.Fatalf("key = %s, want .dump.age", res.Key)
		}
		stored := stores[0].Get(res.Key)
		if bytes.Contains(stored, body[len(body)-200:]) {
			t.Fatal("the stored object holds plaintext")
		}
		for i, s := range stores[1:] {
			if !bytes.Equal(s.Get(res.Key), stored) {
				t.Errorf("destination %d holds other bytes", i+1)
			}
		}
		var m catalog.Manifest
		if err := json.Unmarshal(stores[0].Get(catalog.ManifestKey(res.Key)), &m); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(stored)
		plainSum := sha256.Sum256(body)
		if m.Encryption == nil || m.Encryption.Format != "age" || len(m.Encryption.Recipients) != 1 ||
			m.Encryption.Recipients[0].Public != id.Recipient().String() ||
			m.Encryption.PlaintextSHA256 != hex.EncodeToString(plainSum[:]) || m.Encryption.PlaintextBytes != int64(len(body)) {
			t.Errorf("manifest encryption = %+v", m.Encryption)
		}
		if m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(stored)) || m.Structure == nil || len(m.Structure.Tables) == 0 {
			t.Errorf("manifest sha256 %s bytes %d structure %v", m.SHA256, m.Bytes, m.Structure)
		}
		plain, err := ids.DecryptReader(bytes.NewReader(stored))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(plain)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("decrypted %d bytes (%v), want the dump's %d", len(got), err, len(body))
		}
	}
}

// A damaged dump is refused before its ciphertext is complete: nothing lands, encrypted or not.
func TestArchiveEncryptedDamagedReachesNoDestination(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	recips, err := agecrypt.ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Clone(realDump(t))
	body = body[:len(body)-40]
	j, _, stores := threeDestinations(t, body)
	j.Encrypt = recips
	if res := j.Archive(context.Background(), Target{App: "shop", Database: "DATABASE_URL"}); res.Err == nil {
		t.Fatal("a damaged dump was archived")
	}
	for i, s := range stores {
		if s.Len() != 0 {
			t.Errorf("destination %d holds %d objects", i, s.Len())
		}
	}
}
