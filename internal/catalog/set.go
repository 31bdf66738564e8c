package catalog

import (
	"fmt"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// Stream is one stored stream of an archive: the dump itself (N 0) or a set's part N, with what
// its manifest says it holds. Reading an archive is reading each of its streams and checking
// each against these.
type Stream struct {
	N               int
	Key             string
	Bytes           int64
	SHA256          string
	PlaintextBytes  int64 // when encrypted
	PlaintextSHA256 string
	Tables          []string // a part's tables; none for the dump
	// Structure is what the backup's check found in the stream (nil with ARCHIVE_CHECK=header).
	Structure *pgdump.Summary
}

// Name says which stream it is in a message: "the dump" or "part 2 (KEY)".
func (s Stream) Name() string {
	if s.N == 0 {
		return "the dump"
	}
	return fmt.Sprintf("part %d (%s)", s.N, s.Key)
}

// Streams are the streams of the archive whose dump is at key, as its manifest m describes them:
// the dump first, then a set's parts in order. The bucket is not trusted: a manifest of a set
// must be of SetManifestVersion and name each part n at PartKey(key, n), so that a manifest
// cannot make a reader fetch any other object; an error says what is wrong.
func Streams(key string, m Manifest) ([]Stream, error) {
	out := []Stream{{Key: key, Bytes: m.Bytes, SHA256: m.SHA256, Structure: m.Structure}}
	if m.Encryption != nil {
		out[0].PlaintextBytes, out[0].PlaintextSHA256 = m.Encryption.PlaintextBytes, m.Encryption.PlaintextSHA256
	}
	if m.Set == nil {
		if m.ManifestVersion == SetManifestVersion {
			return nil, fmt.Errorf("the manifest of %s is of a set (manifest_version %d) but lists no parts: it is damaged, back up again", key, m.ManifestVersion)
		}
		return out, nil
	}
	if m.ManifestVersion != SetManifestVersion {
		return nil, fmt.Errorf("the manifest of %s lists parts but has manifest_version %d, not %d: it was not written by pgoffsite, back up again", key, m.ManifestVersion, SetManifestVersion)
	}
	if len(m.Set.Parts) == 0 {
		return nil, fmt.Errorf("the manifest of %s is of a set with no parts: it is damaged, back up again", key)
	}
	for i, p := range m.Set.Parts {
		n := i + 1
		// The manifest's key may be the full key or the key under the store's prefix.
		if want := PartKey(key, n); p.Key != want && !strings.HasSuffix(want, "/"+p.Key) {
			return nil, fmt.Errorf("the manifest of %s names part %d %q, not %s: a manifest names only its own parts, so it is not trusted; back up again and find out who wrote it",
				key, n, p.Key, want)
		}
		out = append(out, Stream{N: n, Key: PartKey(key, n), Bytes: p.Bytes, SHA256: p.SHA256,
			PlaintextBytes: p.PlaintextBytes, PlaintextSHA256: p.PlaintextSHA256, Tables: p.Tables, Structure: p.Structure})
	}
	return out, nil
}

// TotalBytes is what an archive's streams hold in the store together.
func TotalBytes(streams []Stream) int64 {
	var n int64
	for _, s := range streams {
		n += s.Bytes
	}
	return n
}
