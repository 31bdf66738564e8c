package heroku

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Database is a resolved Heroku Postgres add-on, as a backup target sees it.
type Database struct {
	App        string // the app the user named (the attaching app)
	Attachment string // the attachment's name on App, e.g. DATABASE or HEROKU_POSTGRESQL_PINK
	AddonID    string // used in /client/v11/databases/{id} paths
	AddonName  string // e.g. postgresql-globular-83867
	BillingApp string // addon.app.name: transfers live under this app, not under App
	Plan       string // e.g. heroku-postgresql:standard-0
	// SourceNames are the names the Data API writes as a backup's from_name for this add-on
	// (its attachment names on the billing app); used to pick the latest backup of *this* database.
	SourceNames []string
}

// DataTimeLayout is how the Data API writes timestamps: "2020-12-13 16:22:47 +0000".
const DataTimeLayout = "2006-01-02 15:04:05 -0700"

// Time is a Data API timestamp; JSON null decodes to the zero value and encodes back to null.
type Time struct{ time.Time }

func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("data API time: %w", err)
	}
	v, err := time.Parse(DataTimeLayout, s)
	if err != nil {
		// Unverified whether every Data API endpoint uses the same layout: accept RFC 3339 too.
		if v2, err2 := time.Parse(time.RFC3339, s); err2 == nil {
			t.Time = v2
			return nil
		}
		return fmt.Errorf("data API time %q: %w", s, err)
	}
	t.Time = v
	return nil
}

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(DataTimeLayout))
}

// Transfer is the Data API's transfer object (heroku-api.md §3). A backup is a transfer.
type Transfer struct {
	UUID           string            `json:"uuid"`
	Num            int               `json:"num"`
	FromName       string            `json:"from_name"`
	FromType       string            `json:"from_type"`
	FromURL        Secret            `json:"from_url"`
	ToName         string            `json:"to_name"`
	ToType         string            `json:"to_type"`
	ToURL          Secret            `json:"to_url"`
	Options        map[string]any    `json:"options"`
	SourceBytes    *int64            `json:"source_bytes"`
	ProcessedBytes int64             `json:"processed_bytes"`
	Succeeded      *bool             `json:"succeeded"`
	Warnings       int               `json:"warnings"`
	CreatedAt      Time              `json:"created_at"`
	StartedAt      Time              `json:"started_at"`
	UpdatedAt      Time              `json:"updated_at"`
	FinishedAt     Time              `json:"finished_at"`
	CanceledAt     Time              `json:"canceled_at"`
	DeletedAt      Time              `json:"deleted_at"`
	PurgedAt       Time              `json:"purged_at"`
	NumKeep        int               `json:"num_keep"`
	Schedule       *TransferSchedule `json:"schedule,omitempty"`
	Logs           []TransferLog     `json:"logs,omitempty"`

	// Retention is set by Capture: the database's manual backups as they were just before the
	// capture, and how many Heroku keeps. Full means Heroku deletes the oldest of them for
	// this one. Not part of the API's answer.
	Retention *Retention `json:"-"`
}

type TransferSchedule struct {
	UUID string `json:"uuid"`
}

type TransferLog struct {
	CreatedAt Time   `json:"created_at"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// IsBackup reports whether the transfer is a backup (pg_dump → gof3r).
func (t Transfer) IsBackup() bool { return t.FromType == "pg_dump" && t.ToType == "gof3r" }

// Finished reports whether Heroku is done with the transfer, successfully or not.
func (t Transfer) Finished() bool { return !t.FinishedAt.IsZero() || !t.CanceledAt.IsZero() }

// OK reports whether the transfer finished successfully.
func (t Transfer) OK() bool {
	return !t.FinishedAt.IsZero() && t.CanceledAt.IsZero() && t.Succeeded != nil && *t.Succeeded
}

// Name is the name Heroku shows people (heroku-api.md §3): b042, a007, c003, r001, or o<legacy name>.
func (t Transfer) Name() string {
	if n, ok := t.Options["pgbackups_name"].(string); ok && n != "" {
		return "o" + n
	}
	prefix := "b"
	switch {
	case t.FromType == "pg_dump" && t.ToType == "pg_restore":
		prefix = "c"
	case t.ToType == "pg_restore":
		prefix = "r"
	case t.FromType == "pg_dump" && t.Schedule != nil:
		prefix = "a"
	}
	return fmt.Sprintf("%s%03d", prefix, t.Num)
}

var backupNameRE = regexp.MustCompile(`^[abcr](\d+)$`)

// ParseBackupName returns the transfer number in a name such as b042.
func ParseBackupName(name string) (int, bool) {
	m := backupNameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// Secret is a string that must never reach a log, an error or a notification: it prints redacted.
type Secret string

func (s Secret) String() string   { return "[REDACTED]" }
func (s Secret) GoString() string { return "[REDACTED]" }

// Reveal returns the secret value; call it only where the value is sent to its owner.
func (s Secret) Reveal() string { return string(s) }

// SignedURL is a backup's one-hour pre-signed download URL (heroku-api.md §4).
type SignedURL struct {
	URL       Secret
	ExpiresAt time.Time
}

// Schedule is one of a database's backup schedules (heroku-api.md §9): Heroku takes a
// scheduled backup daily at Hour in Timezone, and keeps those apart from manual backups.
type Schedule struct {
	UUID         string   `json:"uuid"`
	Name         string   `json:"name"` // the config var it backs up, e.g. DATABASE_URL
	Hour         Hour     `json:"hour"`
	Days         []string `json:"days"`
	Timezone     string   `json:"timezone"`
	RetainWeeks  *int     `json:"retain_weeks"`
	RetainMonths *int     `json:"retain_months"`
	CreatedAt    Time     `json:"created_at"`
	UpdatedAt    Time     `json:"updated_at"`
	DeletedAt    Time     `json:"deleted_at"`
}

// String is the schedule as people read it: "DATABASE_URL daily at 02:00 America/Los_Angeles".
func (s Schedule) String() string {
	when := "daily"
	if len(s.Days) > 0 && len(s.Days) < 7 {
		when = "on " + strings.Join(s.Days, ", ")
	}
	return fmt.Sprintf("%s %s at %02d:00 %s", s.Name, when, int(s.Hour), s.Timezone)
}

// Hour is a schedule's hour of the day. The list answers a number (2) while the CLI sends a
// string ("02"): both are read.
type Hour int

func (h *Hour) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = 0
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*h = Hour(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("schedule hour %s: not a number", b)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("schedule hour %q: %w", s, err)
	}
	*h = Hour(n)
	return nil
}

// IsManual reports whether the transfer is a manual backup (`heroku pg:backups:capture`, or a
// capture of this program's), which Heroku keeps only num_keep of; scheduled backups count apart.
func (t Transfer) IsManual() bool {
	return t.IsBackup() && t.Schedule == nil && t.ToName != "SCHEDULED BACKUP"
}

// Retention is how many manual backups Heroku keeps of a database and which it keeps now
// (heroku-api.md §9). When a capture would exceed NumKeep, Heroku deletes the oldest manual
// backup itself, so a daily capture on a small plan rotates the user's own backups out.
type Retention struct {
	Plan       string     // e.g. heroku-postgresql:essential-0
	NumKeep    int        // manual backups Heroku keeps; 0: unknown
	Documented bool       // NumKeep is the plan's documented limit: no manual backup carried num_keep
	Manual     []Transfer // the database's manual backups Heroku still lists, oldest first
}

// Full reports whether the next capture makes Heroku delete the oldest manual backup.
func (r Retention) Full() bool { return r.NumKeep > 0 && len(r.Manual) >= r.NumKeep }

// Warning says, with the numbers, what capturing does to the database's manual backups, and
// what to do instead.
func (r Retention) Warning(db Database) string {
	plan := r.Plan
	if plan == "" {
		plan = "this database's plan"
	}
	advice := fmt.Sprintf("to keep them, use BACKUP_MODE=latest with a Heroku backup schedule (`heroku pg:backups:schedule %s --at '02:00 UTC' -a %s`), whose backups Heroku keeps apart from manual ones",
		db.Attachment, db.App)
	switch {
	case r.NumKeep == 0:
		return fmt.Sprintf("each capture is a manual backup, and Heroku keeps only a few of them (how many on %s is not known yet): once the limit is reached, each capture makes Heroku delete the oldest manual backup of %s; %s",
			plan, db.Attachment, advice)
	case r.Full():
		kept := fmt.Sprintf("num_keep=%d", r.NumKeep)
		if r.Documented {
			kept = fmt.Sprintf("%d (the plan's documented limit)", r.NumKeep)
		}
		return fmt.Sprintf("each capture makes Heroku delete the oldest manual backup of %s (now %s): %s keeps %s manual backups and has %d now; %s",
			db.Attachment, r.Manual[0].Name(), plan, kept, len(r.Manual), advice)
	default:
		kept := fmt.Sprintf("num_keep=%d", r.NumKeep)
		if r.Documented {
			kept = fmt.Sprintf("%d (the plan's documented limit)", r.NumKeep)
		}
		return fmt.Sprintf("%s keeps %s manual backups and has %d now: after %d more capture(s), each capture makes Heroku delete the oldest manual backup of %s; %s",
			plan, kept, len(r.Manual), r.NumKeep-len(r.Manual), db.Attachment, advice)
	}
}

// documentedKeep is how many manual backups Heroku documents keeping on a plan (heroku-api.md
// §9), for when no backup has told num_keep yet; 0 when the plan is not known.
func documentedKeep(plan string) int {
	tier := strings.TrimPrefix(plan, "heroku-postgresql:")
	switch {
	case strings.HasPrefix(tier, "essential"):
		return 5
	case strings.HasPrefix(tier, "standard"):
		return 25
	case strings.HasPrefix(tier, "premium"), strings.HasPrefix(tier, "private"), strings.HasPrefix(tier, "shield"):
		return 50
	}
	return 0
}
