package archive

import (
	"context"
	"io"
	"time"
)

// Source is where a target's backup comes from: Heroku's PGBackups (pgbackups), or a pg_dump the
// run starts itself (dumpsource). It is the only part of a run that knows where bytes come from;
// the job checks them, stores them and describes them from the Meta alone.
type Source interface {
	// Open finds or makes t's backup and opens its bytes. The job closes Body. A source whose
	// bytes can fail part-way (a pg_dump exiting non-zero) makes Body's Read return that error
	// instead of io.EOF, so that nothing is published.
	Open(ctx context.Context, t Target) (Backup, error)
}

// Backup is one backup a Source yields.
type Backup struct {
	Meta Meta
	Body io.ReadCloser
	// Size is the exact length of Body, or store.UnknownSize when it is known only at its end.
	Size int64
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
	Source string        `json:"source"` // pgbackups or pg_dump
	Heroku *HerokuOrigin `json:"heroku,omitempty"`
	PgDump *DumpOrigin   `json:"pg_dump,omitempty"`
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
