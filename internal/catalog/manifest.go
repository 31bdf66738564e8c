package catalog

import (
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
	// Set is present in a parallel dump's manifest (manifest_version SetManifestVersion): the
	// dump at Key is its first stream, and Set.Parts the others.
	Set *Set `json:"set,omitempty"`
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

// Meta is what the key and the manifest are built from.
type Meta struct {
	// App and Database are the key's first two segments: a Heroku app and the attachment it
	// resolved the target to, or, for an env:VAR target, VAR in both places.
	App      string
	Database string
	// Backup names this backup among the others of App and Database, stably: a re-run that
	// meets the same backup meets the same key (Heroku's b042), and two dumps never share one.
	Backup string
	// At is the time in the key: when a Heroku backup finished, when a dump started.
	At         time.Time
	CreatedAt  time.Time
	FinishedAt time.Time // zero: the job records when the stream ended
	Mode       string    // how it was taken: capture, latest, pg_dump
	Origin     Origin
}

// Origin is the part of a manifest only one kind of source fills in.
type Origin struct {
	Source string        `json:"source"` // pgbackups, pg_dump or fork
	Heroku *HerokuOrigin `json:"heroku,omitempty"`
	PgDump *DumpOrigin   `json:"pg_dump,omitempty"`
	Fork   *ForkOrigin   `json:"fork,omitempty"` // BACKUP_METHOD=fork: the fork pg_dump read; Heroku names the database forked
}

// ForkOrigin is the throwaway fork a fork capture dumped, deleted after the dump.
type ForkOrigin struct {
	Addon string `json:"addon"` // the fork's add-on name
	App   string `json:"app"`   // the app it was provisioned on (pgoffsite's own)
	Plan  string `json:"plan"`
	Of    string `json:"of"` // what the fork copied, APP::ATTACHMENT_URL
}

// HerokuOrigin is the Heroku database a backup was taken of.
type HerokuOrigin struct {
	App          string `json:"app"`
	Attachment   string `json:"attachment"`
	Addon        string `json:"addon"`
	BillingApp   string `json:"billing_app"`
	Plan         string `json:"plan,omitempty"`
	TransferUUID string `json:"transfer_uuid,omitempty"` // pgbackups only
}

// DumpOrigin is how a pg_dump source took a backup.
type DumpOrigin struct {
	EnvVar        string   `json:"env_var,omitempty"` // env:VAR targets
	ClientVersion string   `json:"client_version"`    // pg_dump --version
	ServerVersion string   `json:"server_version"`
	Args          []string `json:"args"` // pg_dump's flags, without the connection
}

// Set is a parallel dump's other streams (PG_DUMP_JOBS): pg_dump processes that all read one
// exported snapshot, each carrying the data of its share of the tables. The dump at the
// manifest's Key is the set's first stream: the schema, sequences, large objects and the data of
// every table no part carries. The manifest is written after every stream is stored, so a set
// whose manifest exists is whole; parts without it are not an archive.
type Set struct {
	Snapshot string `json:"snapshot"` // the exported snapshot's name, for the record
	Jobs     int    `json:"jobs"`     // PG_DUMP_JOBS
	Parts    []Part `json:"parts"`
}

// Part is one data stream of a Set, stored at PartKey(manifest.Key, n) for n = 1, 2, ….
type Part struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`  // what the store holds: the ciphertext's size when encrypted
	SHA256 string `json:"sha256"` // of what the store holds
	// Tables are the tables whose data the part carries, as schema.name.
	Tables []string `json:"tables"`
	// PlaintextBytes and PlaintextSHA256 are the plaintext's when the set is encrypted.
	PlaintextBytes  int64           `json:"plaintext_bytes,omitempty"`
	PlaintextSHA256 string          `json:"plaintext_sha256,omitempty"`
	Structure       *pgdump.Summary `json:"structure,omitempty"`
}

// SetManifestVersion is the manifest_version of a set's manifest: a reader that knows only
// version 1 would take the first stream for the whole archive.
const SetManifestVersion = 2
