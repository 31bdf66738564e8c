package catalog

import (
	"fmt"
	"strings"

	"github.com/pgoffsite/pgoffsite/internal/pgdump"
	"github.com/pgoffsite/pgoffsite/internal/store"
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

// PartProblems says, of each part of a set, how the store's record r differs from the manifest:
// a part missing, or of another size; and parts listed beside the dump that the manifest does
// not name. Nothing is downloaded to tell.
func PartProblems(r Record, streams []Stream) []string {
	var out []string
	for _, s := range streams[1:] {
		info, ok := r.Parts[s.N]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s is missing from the store: the set is incomplete and cannot be restored; back up again", s.Name()))
		case info.Size != s.Bytes:
			out = append(out, fmt.Sprintf("%s is %d bytes in the store, the manifest says %d: it is not the part the backup stored", s.Name(), info.Size, s.Bytes))
		}
	}
	for n, p := range r.Parts {
		if n >= len(streams) {
			out = append(out, fmt.Sprintf("%s is beside %s, whose manifest names %d parts: it is no part of the archive; remove it with the bucket owner's credentials once you know who wrote it", p.Key, streams[0].Key, len(streams)-1))
		}
	}
	return out
}

// StoredBytes is what the store holds of the archive by its manifest: the dump's size, and a
// set's parts' beside it.
func (m Manifest) StoredBytes() int64 {
	n := m.Bytes
	if m.Set != nil {
		for _, p := range m.Set.Parts {
			n += p.Bytes
		}
	}
	return n
}

// PlainBytes is the dump's own size (the plaintext's when encrypted), summed over a set's
// streams.
func (m Manifest) PlainBytes() int64 {
	n := m.Bytes
	if m.Encryption != nil {
		n = m.Encryption.PlaintextBytes
	}
	if m.Set != nil {
		for _, p := range m.Set.Parts {
			if m.Encryption != nil {
				n += p.PlaintextBytes
			} else {
				n += p.Bytes
			}
		}
	}
	return n
}

// LoneSets are the dump keys of the sets whose parts are listed in l with neither the dump nor
// its manifest (a dump without its manifest is a lone dump already, whose problem names its parts).
func LoneSets(l store.Listing) []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range l.Objects {
		dumpKey, _, ok := PartOf(o.Key)
		if !ok || seen[dumpKey] {
			continue
		}
		seen[dumpKey] = true
		_, dump := l.Find(dumpKey)
		_, manifest := l.Find(ManifestKey(dumpKey))
		if !dump && !manifest {
			out = append(out, dumpKey)
		}
	}
	return out
}

// LoneParts explains parts of a set listed without their dump or manifest: what leaves them, and
// what to do.
func LoneParts(dumpKey string) string {
	return fmt.Sprintf("%s: parts of a set (%s...) are there without the dump or its manifest: a backup run stopped before writing them, or someone else wrote the parts; they are not an archive: remove them with the bucket owner's credentials once you know which",
		dumpKey, PartKey(dumpKey, 1))
}
