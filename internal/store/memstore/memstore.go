// Package memstore is a store.Store in memory that keeps the contract (never overwrites, exact
// sizes, nothing stored on a reader's error), for tests of what writes to a store.
package memstore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// Store keeps objects in memory. The zero value is ready.
type Store struct {
	// Hold, when set, is called once per .dump object after Put has read its first 128 KiB and
	// before it reads the rest: a test acts there while a stream is under way.
	Hold func()

	mu      sync.Mutex
	objects map[string][]byte
	puts    int
}

var _ store.Store = (*Store)(nil)

func (m *Store) Put(ctx context.Context, obj store.Object, r io.Reader) error {
	m.mu.Lock()
	m.puts++
	m.mu.Unlock()
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
	if m.objects == nil {
		m.objects = map[string][]byte{}
	}
	if _, ok := m.objects[obj.Key]; ok {
		return fmt.Errorf("mem: %s: %w", obj.Key, store.ErrExists)
	}
	m.objects[obj.Key] = b
	return nil
}

func (m *Store) Location(key string) string { return "mem://" + key }

// Get returns the object at key, nil when there is none.
func (m *Store) Get(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objects[key]
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
