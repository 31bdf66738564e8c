package archive

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// Manifest is written beside each dump (same key, .json): what the archive is and how to check it.
// The top-level fields are those of archives made before sources were separate (the Heroku ones
// empty for other sources); Origin holds what only one kind of source knows.
type Manifest struct {
	ManifestVersion  int           `json:"manifest_version"`
	App              string        `json:"app"`
	Database         string        `json:"database"`
	Addon            string        `json:"addon"`
	BillingApp       string        `json:"billing_app"`
	Plan             string        `json:"plan,omitempty"`
	Backup           string        `json:"backup"`
	TransferUUID     string        `json:"transfer_uuid"`
	BackupCreatedAt  time.Time     `json:"backup_created_at"`
	BackupFinishedAt time.Time     `json:"backup_finished_at"`
	Mode             string        `json:"mode"`
	Bytes            int64         `json:"bytes"`
	SHA256           string        `json:"sha256"`
	Key              string        `json:"key"`
	ArchivedAt       time.Time     `json:"archived_at"`
	PgDump           pgdump.Header `json:"pg_dump"`
	// Structure is what the check of the archive found while it streamed: TOC entries, tables
	// with their row counts (unless framing only), large objects. A restore can be compared with
	// it. Absent with ARCHIVE_CHECK=header.
	Structure        *pgdump.Summary `json:"structure,omitempty"`
	PgoffsiteVersion string          `json:"pgoffsite_version"`
	// Origin is absent from archives made before sources were separate: all of them pgbackups.
	Origin *Origin `json:"origin,omitempty"`
	// Encryption is set when the dump is encrypted (key ending .dump.age): Bytes and SHA256 above
	// are then the ciphertext's, what the store holds, and Structure is the plaintext's.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Copies says, when ARCHIVE_URL names several destinations, how the same run went at each.
	Copies []CopyStatus `json:"copies,omitempty"`
	// Retention is the class the archive is kept as with RETENTION: daily, weekly, monthly or
	// yearly (also its S3 tag retention=CLASS); empty without RETENTION.
	Retention string `json:"retention,omitempty"`
}

// Encryption says how an encrypted dump can be decrypted, and how to check the result.
type Encryption struct {
	Format          string               `json:"format"` // "age"
	Recipients      []agecrypt.Recipient `json:"recipients"`
	PlaintextBytes  int64                `json:"plaintext_bytes"`
	PlaintextSHA256 string               `json:"plaintext_sha256"`
}

// CopyStatus is one destination's outcome, as the manifest records it.
type CopyStatus struct {
	Destination string `json:"destination"`
	Status      string `json:"status"` // archived, already archived or failed
}

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

// IsEncrypted tells whether a dump key is an encrypted dump's (.dump.age).
func IsEncrypted(dumpKey string) bool { return strings.HasSuffix(dumpKey, ".dump"+EncryptedSuffix) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
