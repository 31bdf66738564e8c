package catalog

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/store"
)

// The store's own record of an archive — sizes, the times it wrote each object, the versions it
// keeps — is the one account a leaked uploader key cannot forge: that key chooses a key's name
// and its bytes, manifests included, but not the store's clock, nor whether the store keeps what
// an overwrite replaced. These rules hold each archive's manifest to that record; verify and
// status both use them.

const (
	// writeSlack is how much later than its manifest a dump may be recorded by the store's
	// clock: the dump is written first, so only a store whose clock stepped back could do it.
	writeSlack = time.Minute
	// FutureSlack is how far past now a claimed time may be before it is "in the future" rather
	// than the difference between two clocks.
	FutureSlack = 5 * time.Minute
)

// Record is what the store holds of one archive.
type Record struct {
	Dump     store.Info
	Manifest *store.Info // nil: no manifest beside the dump
	// Versions tells that the store's versions were listed: Dump.Older and Manifest.Older are
	// then all the earlier writes of those keys the store keeps.
	Versions bool
	// Parts are the objects listed at PartKey(dump key, n), by n: a set's other streams, or the
	// leftovers of a run that stopped before its manifest.
	Parts map[int]store.Info
}

// StoredBytes is what the store holds of the archive: the dump and every part listed beside it.
func (r Record) StoredBytes() int64 {
	n := r.Dump.Size
	for _, p := range r.Parts {
		n += p.Size
	}
	return n
}

// RecordOf finds the archive whose dump is at dumpKey in a listing.
func RecordOf(l store.Listing, dumpKey string) (Record, bool) {
	d, ok := l.Find(dumpKey)
	if !ok {
		return Record{}, false
	}
	r := Record{Dump: d, Versions: l.Versions}
	if m, ok := l.Find(ManifestKey(dumpKey)); ok {
		r.Manifest = &m
	}
	r.Parts = partsOf(l, dumpKey)
	return r, true
}

// partsOf finds the parts listed beside dumpKey: their keys sort together after it.
func partsOf(l store.Listing, dumpKey string) map[int]store.Info {
	prefix := dumpKey + partInfix
	i := sort.Search(len(l.Objects), func(i int) bool { return l.Objects[i].Key >= prefix })
	var parts map[int]store.Info
	for ; i < len(l.Objects) && strings.HasPrefix(l.Objects[i].Key, prefix); i++ {
		if d, n, ok := PartOf(l.Objects[i].Key); ok && d == dumpKey {
			if parts == nil {
				parts = map[int]store.Info{}
			}
			parts[n] = l.Objects[i]
		}
	}
	return parts
}

// ListingPrefix is the prefix whose listing holds the dump at dumpKey, its manifest and its
// verification record, and nothing of another archive's but those of the same backup.
func ListingPrefix(dumpKey string) string {
	if i := strings.LastIndex(dumpKey, ".dump"); i >= 0 {
		return dumpKey[:i+1]
	}
	return dumpKey
}

// Mismatches says, each in a sentence naming the key, how the store's record of the archive at
// key differs from what its manifest m describes: the archive it names, its size, and
// Overwrites. None means the record is the archive m describes as far as the store can tell
// without reading it; verify then checks its bytes.
func Mismatches(key string, r Record, m Manifest) []string {
	var out []string
	if m.Key != "" && !strings.HasSuffix(key, m.Key) && !strings.HasSuffix(m.Key, key) {
		out = append(out, fmt.Sprintf("the manifest of %s describes another archive (%s)", key, m.Key))
	}
	if r.Dump.Size != m.Bytes {
		out = append(out, fmt.Sprintf("%s is %d bytes in the store, its manifest says %d: it is not the archive the manifest describes", key, r.Dump.Size, m.Bytes))
	}
	return append(out, Overwrites(key, r, m)...)
}

// Overwrites says what only the store's history shows: a dump written after its manifest, and
// earlier versions of either — writes that replaced what the backup run stored. m's size names
// the earlier version of the dump that is most likely the archive.
func Overwrites(key string, r Record, m Manifest) []string {
	var out []string
	if mf := r.Manifest; mf != nil && !r.Dump.Modified.IsZero() && !mf.Modified.IsZero() && r.Dump.Modified.After(mf.Modified.Add(writeSlack)) {
		out = append(out, fmt.Sprintf("%s was written %s, after its manifest (%s): it replaced the archive the manifest describes",
			key, stamp(r.Dump.Modified), stamp(mf.Modified)))
	}
	if older := r.Dump.Older; len(older) > 0 {
		s := fmt.Sprintf("%s was overwritten: the store keeps %s of it (%s) besides the current one (%d bytes, written %s)",
			key, versions(len(older)), describe(older), r.Dump.Size, stamp(r.Dump.Modified))
		for _, v := range older {
			if v.Size == m.Bytes && v.Size != r.Dump.Size {
				s += fmt.Sprintf("; version %s has the manifest's size: it is most likely the archive, fetch it by its version ID with the bucket owner's credentials", v.ID)
				break
			}
		}
		if sameBytes(r.Dump, older) {
			// An ETag is a content hash only for one upload's layout (a multipart one's depends on
			// its part sizes), so equal ETags say "same bytes" and different ones say nothing.
			s += fmt.Sprintf("; every version has the current one's size and ETag (%s): most likely the same bytes written again", r.Dump.ETag)
		}
		out = append(out, s)
	}
	if mf := r.Manifest; mf != nil && len(mf.Older) > 0 {
		out = append(out, fmt.Sprintf("the manifest of %s was overwritten: the store keeps %s of it (%s) besides the current one, written %s; what it says cannot be trusted",
			key, versions(len(mf.Older)), describe(mf.Older), stamp(mf.Modified)))
	}
	return out
}

// Finished is when the archive finished as far as the store vouches for it: claimed (the
// manifest's backup_finished_at, or the key's time), but never later than the store wrote the
// manifest (the dump, without one) — an archive is no newer than its own writing.
func Finished(r Record, claimed time.Time) time.Time {
	stored := r.Dump.Modified
	if r.Manifest != nil && r.Manifest.Modified.After(stored) {
		stored = r.Manifest.Modified
	}
	if !stored.IsZero() && claimed.After(stored) {
		return stored
	}
	return claimed
}

// InFuture tells a claimed time later than now by more than a clock's error.
func InFuture(claimed, now time.Time) bool { return claimed.After(now.Add(FutureSlack)) }

func sameBytes(cur store.Info, older []store.Version) bool {
	if cur.ETag == "" {
		return false
	}
	for _, v := range older {
		if v.ETag != cur.ETag || v.Size != cur.Size {
			return false
		}
	}
	return true
}

func versions(n int) string {
	if n == 1 {
		return "1 earlier version"
	}
	return fmt.Sprintf("%d earlier versions", n)
}

func describe(vs []store.Version) string {
	var parts []string
	for i, v := range vs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(vs)-i))
			break
		}
		etag := ""
		if v.ETag != "" {
			etag = ", ETag " + v.ETag
		}
		parts = append(parts, fmt.Sprintf("%s: %d bytes%s, written %s", v.ID, v.Size, etag, stamp(v.Modified)))
	}
	return strings.Join(parts, "; ")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
