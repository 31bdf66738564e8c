// Package memstore is a store.Store in memory that keeps the contract (never overwrites, exact
// sizes, nothing stored on a reader's error), for tests of what writes to a store, and the read
// side (store.Reader) for tests of what reads one back.
package memstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Store keeps objects in memory. The zero value is ready.
type Store struct {
	// Hold, when set, is called once per .dump object after Put has read its first 128 KiB and
	// before it reads the rest: a test acts there while a stream is under way.
	Hold func()
	// Versioned keeps what Overwrite replaces as an earlier version, as S3 does with versioning
	// on, and List reports them.
	Versioned bool
	// Now is the store's clock for Modified; nil is time.Now.
	Now func() time.Time

	mu      sync.Mutex
	objects map[string]*object
	puts    int
	version int
}

type object struct {
	data     []byte
	modified time.Time
	older    []store.Version // newest first
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Reader = (*Store)(nil)
)

func (m *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	m.mu.Lock()
	m.puts++
	m.mu.Unlock()
	if obj.Size < 0 && obj.Size != store.UnknownSize {
		return fmt.Errorf("mem: %s: size %d is neither a size nor UnknownSize", obj.Key, obj.Size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r = store.ContextReader(ctx, r)
	var head []byte
	if m.Hold != nil && strings.HasSuffix(obj.Key, ".dump") {
		head = make([]byte, 128<<10)
		n, err := io.ReadFull(r, head)
		if err != nil && err != io.ErrUnexpectedEOF {
			return err
		}
		head = head[:n]
		m.Hold()
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b := append(head, rest...)
	if obj.Size != store.UnknownSize && int64(len(b)) != obj.Size {
		return store.ErrSizeMismatch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[obj.Key]; ok {
		return fmt.Errorf("mem: %s: %w", obj.Key, store.ErrExists)
	}
	m.set(obj.Key, b)
	return nil
}

// Overwrite replaces the object at key as a plain S3 PUT without If-None-Match does: what a
// leaked uploader key can do where conditional writes are not enforced. With Versioned the
// replaced object stays as an earlier version.
func (m *Store) Overwrite(key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set(key, data)
}

// set stores data at key; m.mu is held.
func (m *Store) set(key string, data []byte) {
	if m.objects == nil {
		m.objects = map[string]*object{}
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	o := &object{data: data, modified: now()}
	if old, ok := m.objects[key]; ok && m.Versioned {
		m.version++
		v := store.Version{ID: fmt.Sprintf("v%d", m.version), Size: int64(len(old.data)), Modified: old.modified, ETag: etag(old.data)}
		o.older = append([]store.Version{v}, old.older...)
	}
	m.objects[key] = o
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func (m *Store) Location(key string) string { return "mem://" + key }

// List describes the objects under prefix; versions are reported when Versioned.
func (m *Store) List(ctx context.Context, prefix string) (store.Listing, error) {
	if err := ctx.Err(); err != nil {
		return store.Listing{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := store.Listing{Versions: m.Versioned}
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			l.Objects = append(l.Objects, store.Info{Key: k, Size: int64(len(o.data)), Modified: o.modified, ETag: etag(o.data),
				Older: append([]store.Version(nil), o.older...)})
		}
	}
	store.SortInfos(l.Objects)
	return l, nil
}

// Open reads the object at key.
func (m *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return nil, 0, fmt.Errorf("mem: open %s: no such object", key)
	}
	return io.NopCloser(bytes.NewReader(o.data)), int64(len(o.data)), nil
}

// Get returns the object at key, nil when there is none.
func (m *Store) Get(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objects[key]; ok {
		return o.data
	}
	return nil
}

// Len is the number of objects stored.
func (m *Store) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects)
}

// Puts is the number of Put calls, successful or not.
func (m *Store) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// Caps are what a directory can do: read, look up markers, keep records, remove. Nothing is
// ever stale: a Put that fails keeps nothing.
func (m *Store) Caps() store.Caps {
	return store.Caps{Reader: m, Markers: m, Records: m, Remove: m}
}

// MarkerExists tells whether an object is at key.
func (m *Store) MarkerExists(ctx context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objects[key]
	return ok, nil
}

// Replace writes body at key, replacing what is there.
func (m *Store) Replace(ctx context.Context, key string, body []byte) error {
	m.Overwrite(key, bytes.Clone(body))
	return nil
}

// Remove deletes the object at key; a missing one is not an error.
func (m *Store) Remove(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}
