package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/memstore"
)

// a destination whose backups stopped three days before now: an archive a day until then,
// stored by the store's clock a few minutes after each backup finished.
type stopped struct {
	*memstore.Store
	clock time.Time
}

func newStopped(t *testing.T) *stopped {
	t.Helper()
	s := &stopped{}
	s.Store = &memstore.Store{Versioned: true, Now: func() time.Time { return s.clock }}
	for ago := 10; ago >= 3; ago-- {
		at := time.Date(2026, 12, 1-ago, 2, 15, 0, 0, time.UTC)
		s.put(t, catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: fmt.Sprintf("b%03d", 100-ago), At: at}), 1000, at, at)
	}
	s.clock = now.Add(-time.Hour) // what the uploader's keys write now is stored now
	return s
}

// put stores a dump of size bytes at key, and its manifest claiming finished, at the store's
// time stored (zero: the manifest is left out).
func (s *stopped) put(t *testing.T, key string, size int64, finished, stored time.Time) {
	t.Helper()
	s.clock = stored.Add(3 * time.Minute)
	if err := s.Put(context.Background(), store.Object{Key: key, Size: size}, bytes.NewReader(make([]byte, size))); err != nil {
		t.Fatal(err)
	}
	if finished.IsZero() {
		return
	}
	info, _ := catalog.ParseKey(key)
	blob, _ := json.Marshal(catalog.Manifest{ManifestVersion: 1, App: info.App, Database: info.Database, Backup: info.Backup,
		BackupFinishedAt: finished, Bytes: size, Key: key})
	s.clock = stored.Add(4 * time.Minute)
	if err := s.Put(context.Background(), store.Object{Key: catalog.ManifestKey(key), Size: int64(len(blob))}, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
}

func (s *stopped) build() Entry {
	return Build(context.Background(), s, "mem://", Target{App: "shop", Database: "DATABASE"}, opts())
}

func fresh(backup string, at time.Time) string {
	return catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: backup, At: at})
}

// Forgeries the uploader's keys can write do not make a target whose backups stopped look
// healthy: an archive counts only when its manifest is there and matches the store's record,
// and its time is never later than the store wrote it. Each forgery is a problem named by its
// key, beside the staleness it failed to hide.
func TestForgeriesDoNotHideStoppedBackups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forge  func(t *testing.T, s *stopped) string // returns the forged key
		reason string
	}{
		{"an empty dump with a fresh time and no manifest", func(t *testing.T, s *stopped) string {
			k := fresh("b500", now.Add(-time.Hour))
			s.put(t, k, 0, time.Time{}, now.Add(-time.Hour))
			return k
		}, "has no manifest beside it"},
		{"a manifest claiming it finished in 2099", func(t *testing.T, s *stopped) string {
			k := fresh("b501", now.Add(-20*time.Hour))
			s.put(t, k, 1000, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(-20*time.Hour))
			return k
		}, "its manifest says the backup finished 2099-01-01 00:00 UTC, in the future"},
		{"a key named for 2099", func(t *testing.T, s *stopped) string {
			k := fresh("b502", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
			s.put(t, k, 1000, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(-time.Hour))
			return k
		}, "its key says the backup finished 2099-01-01 00:00 UTC, in the future"},
		{"a manifest that does not describe the dump's size", func(t *testing.T, s *stopped) string {
			k := fresh("b503", now.Add(-time.Hour))
			s.put(t, k, 1000, now.Add(-time.Hour), now.Add(-time.Hour))
			s.Overwrite(k, []byte("tiny"))
			return k
		}, "is 4 bytes in the store, its manifest says 1000"},
		{"a dump written after its manifest", func(t *testing.T, s *stopped) string {
			k := fresh("b504", now.Add(-5*time.Hour))
			s.put(t, k, 1000, now.Add(-5*time.Hour), now.Add(-5*time.Hour))
			s.clock = now.Add(-time.Hour)
			s.Overwrite(k, make([]byte, 1000))
			return k
		}, "after its manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStopped(t)
			if e := s.build(); e.OK() != false || len(e.Problems) != 1 || !strings.Contains(e.Problems[0], "stale") {
				t.Fatalf("before the forgery: problems %q", e.Problems)
			}
			key := tc.forge(t, s)
			e := s.build()
			p := strings.Join(e.Problems, "\n")
			if e.OK() || !strings.Contains(p, "stale: the newest archive (b097) finished 3d 7h ago") {
				t.Errorf("the forgery hid the stopped backups: newest %+v, problems %q", e.Newest, e.Problems)
			}
			if !strings.Contains(p, key) || !strings.Contains(p, tc.reason) {
				t.Errorf("problems %q do not name %s and %q", e.Problems, key, tc.reason)
			}
			if e.Archives != 8 {
				t.Errorf("%d archives counted, want the 8 real ones", e.Archives)
			}
		})
	}
}

// An archive overwritten where the store keeps versions: a problem naming the key, the
// versions kept, and the one that is most likely the archive; and a listing that could not see
// versions is said once.
func TestOverwrittenArchiveIsAProblem(t *testing.T) {
	s := newStopped(t)
	k := fresh("b600", now.Add(-2*time.Hour))
	s.put(t, k, 1000, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	s.clock = now.Add(-2*time.Hour + 5*time.Minute)
	s.Overwrite(k, make([]byte, 1000))
	e := s.build()
	p := strings.Join(e.Problems, "\n")
	if e.OK() || !strings.Contains(p, k+" was overwritten: the store keeps 1 earlier version of it (v1: 1000 bytes") || e.Newest.Backup != "b097" {
		t.Errorf("newest %+v, problems %q", e.Newest, e.Problems)
	}

	blind := Build(context.Background(), noVersions{s}, "s3://bkt/pg", Target{App: "shop", Database: "DATABASE"}, opts())
	if w := strings.Join(blind.Warnings, "\n"); !strings.Contains(w, "an overwritten archive cannot be seen at s3://bkt/pg: s3:ListBucketVersions") {
		t.Errorf("warnings %q", blind.Warnings)
	}
}

type noVersions struct{ *stopped }

func (n noVersions) List(ctx context.Context, prefix string) (store.Listing, error) {
	l, err := n.stopped.List(ctx, prefix)
	for i := range l.Objects {
		l.Objects[i].Older = nil
	}
	l.Versions, l.VersionsErr = false, errors.New("s3:ListBucketVersions denied")
	return l, err
}

// frozen answers a manifest read as S3 does for an object in GLACIER not yet restored.
type frozen struct {
	*stopped
	key string
}

func (f frozen) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if key == f.key {
		return nil, 0, fmt.Errorf("s3: get s3://bkt/pg/%s: %w", key, store.ErrArchived)
	}
	return f.stopped.Open(ctx, key)
}

// A manifest that lifecycle rules moved to Glacier with its dump cannot be read: that is not a
// forgery; the archive counts by the store's record, with a warning.
func TestManifestInGlacierStillCounts(t *testing.T) {
	s := newStopped(t)
	old := fresh("b090", time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC))
	e := Build(context.Background(), frozen{s, catalog.ManifestKey(old)}, "s3://bkt/pg", Target{App: "shop", Database: "DATABASE"}, opts())
	if e.Archives != 8 || len(e.Problems) != 1 || !strings.Contains(e.Problems[0], "stale") ||
		!strings.Contains(strings.Join(e.Warnings, "\n"), "1 manifests are in an archive storage class (Glacier)") {
		t.Errorf("archives %d, problems %q, warnings %q", e.Archives, e.Problems, e.Warnings)
	}
}
