package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// exactStore reads exactly the object's size, as a store that knows the size does, and keeps
// the object only when every byte came without an error.
type exactStore struct{ kept map[string][]byte }

func (s *exactStore) Put(_ context.Context, o store.Object, r io.Reader) error {
	if _, ok := s.kept[o.Key]; ok {
		return store.ErrExists
	}
	buf := make([]byte, o.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	s.kept[o.Key] = buf
	return nil
}

func (s *exactStore) Location(key string) string { return "mem://" + key }

func TestStoreStreamChecksSizeAndDigest(t *testing.T) {
	body := bytes.Repeat([]byte("slug bytes "), 10000)
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		body    []byte
		size    int64
		sha     string
		wantErr bool
	}{
		{"right", body, int64(len(body)), good, false},
		{"wrong digest, right size", append(append([]byte(nil), body[:len(body)-1]...), 'X'), int64(len(body)), good, true},
		{"short", body[:len(body)-1], int64(len(body)), good, true},
		{"long", append(append([]byte(nil), body...), 'X'), int64(len(body)), good, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &exactStore{kept: map[string][]byte{}}
			j := &Job{Destinations: []Destination{{Name: "a", Store: st}, {Name: "b", Store: &exactStore{kept: map[string][]byte{}}}}}
			_, err := j.StoreStream(context.Background(), Stream{Key: "k", Body: bytes.NewReader(tt.body), Size: tt.size, SHA256: tt.sha})
			if tt.wantErr {
				if !errors.Is(err, ErrMismatch) || len(st.kept) != 0 {
					t.Errorf("err %v, kept %d objects: want ErrMismatch and nothing kept", err, len(st.kept))
				}
				return
			}
			if err != nil || !bytes.Equal(st.kept["k"], body) {
				t.Fatalf("err %v", err)
			}
			res, err := j.StoreStream(context.Background(), Stream{Key: "k", Body: bytes.NewReader(tt.body), Size: tt.size, SHA256: tt.sha})
			if err != nil || !res.AlreadyArchived {
				t.Errorf("second store: %v, already archived %v", err, res.AlreadyArchived)
			}
		})
	}
}
