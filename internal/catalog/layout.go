// Package catalog is what a bucket holds and how to find it: the layout of keys (dumps, their
// manifests, verification and drill records), the records themselves, the rules that hold a
// manifest to the store's own record of an archive, and the query for a target's newest archive.
// The backup job writes by it; verify, status and drills read by it.
package catalog

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Key is where a backup's dump lands, relative to the store's prefix:
// <app>/<database>/<YYYY>/<MM>/<DD>/<app>-<database>-<backup>-<at, UTC>.dump, database being
// KeyDatabase(m.Database). It depends only on the backup, so archiving the same Heroku backup
// twice meets the same key (and the store's no-overwrite rule) instead of making a second copy;
// it sorts by time.
func Key(m Meta) string {
	at := m.At.UTC()
	name := KeyDatabase(m.Database)
	return fmt.Sprintf("%s/%s/%s/%s-%s-%s-%s.dump", m.App, name, at.Format(keyDateLayout),
		m.App, name, m.Backup, at.Format(keyTimeLayout))
}

const (
	keyDateLayout = "2006/01/02"
	keyTimeLayout = "20060102T150405Z"
)

// KeyDatabase is a key's <database> segment for the attachment Heroku resolved a target to.
func KeyDatabase(attachment string) string { return strings.ToUpper(attachment) }

// KeyInfo is what a dump key made by Key tells without reading its manifest.
type KeyInfo struct {
	App        string
	Database   string // the key's segment: KeyDatabase of the attachment
	Backup     string // e.g. b042
	Num        int    // the backup's transfer number; 0 for a legacy name
	FinishedAt time.Time
}

// ParseKey reads a dump key made by Key (relative to the store's prefix), plain or encrypted
// (.dump.age); ok is false for any other key, so that foreign objects in the bucket are passed
// over rather than misread.
func ParseKey(key string) (k KeyInfo, ok bool) {
	parts := strings.Split(strings.TrimSuffix(key, EncryptedSuffix), "/")
	if len(parts) != 6 || !strings.HasSuffix(parts[5], ".dump") {
		return k, false
	}
	k.App, k.Database = parts[0], parts[1]
	rest, found := strings.CutPrefix(strings.TrimSuffix(parts[5], ".dump"), k.App+"-"+k.Database+"-")
	i := strings.LastIndexByte(rest, '-')
	if k.App == "" || k.Database == "" || !found || i <= 0 {
		return k, false
	}
	at, err := time.Parse(keyTimeLayout, rest[i+1:])
	if err != nil || strings.Join(parts[2:5], "/") != at.Format(keyDateLayout) {
		return k, false
	}
	k.Backup, k.FinishedAt = rest[:i], at
	if m := backupNumRE.FindStringSubmatch(k.Backup); m != nil {
		k.Num, _ = strconv.Atoi(m[1])
	}
	return k, true
}

// backupNumRE is a Heroku backup name (b042, a007, c003, r010): its number orders backups that
// finished in the same second.
var backupNumRE = regexp.MustCompile(`^[abcr](\d+)$`)

// ManifestKey is the manifest's key beside a dump key: <name>.json beside <name>.dump, and
// <name>.age.json beside <name>.dump.age. The two differ so that a backup archived both plain and
// encrypted (archived again after ARCHIVE_RECIPIENTS was set) has a manifest for each.
func ManifestKey(dumpKey string) string {
	if base, ok := strings.CutSuffix(dumpKey, ".dump"+EncryptedSuffix); ok {
		return base + EncryptedSuffix + ".json"
	}
	return strings.TrimSuffix(dumpKey, ".dump") + ".json"
}

// EncryptedSuffix ends the key of an encrypted dump: <...>.dump.age, as the age tool names its files.
const EncryptedSuffix = ".age"

// IsEncrypted tells whether a dump key is an encrypted dump's (.dump.age).
func IsEncrypted(dumpKey string) bool { return strings.HasSuffix(dumpKey, ".dump"+EncryptedSuffix) }

// PartKey is the key of a set's part n (1, 2, …) beside its dump key: <dump key>.part01. It
// does not end in .dump or .dump.age, so nothing takes a part for an archive of its own.
func PartKey(dumpKey string, n int) string { return fmt.Sprintf("%s%s%02d", dumpKey, partInfix, n) }

const partInfix = ".part"

// PartOf reads a key made by PartKey: the dump key it belongs to and its number; ok is false
// for any other key.
func PartOf(key string) (dumpKey string, n int, ok bool) {
	i := strings.LastIndex(key, partInfix)
	if i <= 0 {
		return "", 0, false
	}
	digits := key[i+len(partInfix):]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || len(digits) < 2 || digits != fmt.Sprintf("%02d", n) {
		return "", 0, false
	}
	if _, ok := ParseKey(key[:i]); !ok {
		return "", 0, false
	}
	return key[:i], n, true
}
