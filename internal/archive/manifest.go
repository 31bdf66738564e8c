package archive

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/pgdump"
)

// Manifest is written beside each dump (same key, .json): what the archive is and how to check it.
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
}

// Key is where a backup's dump lands, relative to the store's prefix:
// <app>/<database>/<YYYY>/<MM>/<DD>/<app>-<database>-<backup>-<finished, UTC>.dump.
// It depends only on the Heroku backup, so archiving the same backup twice meets the same key
// (and the store's no-overwrite rule) instead of making a second copy; it sorts by time.
func Key(db heroku.Database, b heroku.Transfer) string {
	at := b.FinishedAt.UTC()
	if at.IsZero() {
		at = b.CreatedAt.UTC()
	}
	name := strings.ToUpper(db.Attachment)
	return fmt.Sprintf("%s/%s/%s/%s-%s-%s-%s.dump", db.App, name, at.Format("2006/01/02"),
		db.App, name, b.Name(), at.Format("20060102T150405Z"))
}

// ManifestKey is the manifest's key beside a dump key.
func ManifestKey(dumpKey string) string {
	return strings.TrimSuffix(dumpKey, ".dump") + ".json"
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
