package heroku

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
)

func target(db Database) string { return "app=" + db.App + " database=" + db.Attachment }

// kind names what a transfer does, for messages.
func (t Transfer) kind() string {
	if t.ToType == "pg_restore" {
		return "restore"
	}
	return "backup"
}

// ref is how the Data API's paths name a transfer: its number, or its uuid when the number is
// unknown.
func (t Transfer) ref() string {
	if t.Num > 0 {
		return strconv.Itoa(t.Num)
	}
	return url.PathEscape(t.UUID)
}

func (db Database) isSource(fromName string) bool {
	for _, n := range db.SourceNames {
		if strings.EqualFold(strings.TrimSuffix(n, "_URL"), strings.TrimSuffix(fromName, "_URL")) {
			return true
		}
	}
	return false
}

func appPath(db Database) string { return "/client/v11/apps/" + url.PathEscape(db.BillingApp) }

func dbPath(db Database) string { return "/client/v11/databases/" + url.PathEscape(db.AddonID) }

// Capture asks Heroku for a new backup of db (heroku-api.md §2) and returns it as Heroku first
// shows it: created, usually not started yet.
func (c *Client) Capture(ctx context.Context, db Database) (Transfer, error) {
	t, err := c.capture(ctx, db)
	if err != nil {
		return Transfer{}, fmt.Errorf("heroku: capture %s: %w", target(db), err)
	}
	return t, nil
}

func (c *Client) capture(ctx context.Context, db Database) (Transfer, error) {
	var info struct{}
	if err := c.dataCall(ctx, http.MethodGet, dbPath(db), nil, &info); err != nil {
		if IsNotFound(err) {
			return Transfer{}, fmt.Errorf("Heroku's Data API does not know the database %s: it is not provisioned yet (or was deprovisioned); see `heroku pg:info %s -a %s`: %w",
				db.AddonName, db.Attachment, db.App, err)
		}
		return Transfer{}, err
	}
	// The capture POST is not idempotent: know the newest transfer before it, so that the backup
	// an ambiguous failure may have started is found instead of a second one being started.
	before, err := c.transfers(ctx, db)
	if err != nil {
		return Transfer{}, fmt.Errorf("list the backups before capturing: %w", err)
	}
	seen := 0
	for _, t := range before {
		seen = max(seen, t.Num)
	}
	kept := retention(db, before)
	withRetention := func(t Transfer) Transfer {
		r := kept
		if t.NumKeep > 0 { // the capture's own answer knows best
			r.NumKeep, r.Documented = t.NumKeep, false
		}
		t.Retention = &r
		return t
	}
	deadline := time.Now().Add(c.o.RetryBudget)
	for attempt := 0; ; attempt++ {
		var t Transfer
		err := c.dataCall(ctx, http.MethodPost, dbPath(db)+"/backups", nil, &t)
		if err == nil {
			if t.Num == 0 && t.UUID == "" {
				return Transfer{}, errors.New("Heroku accepted the capture but its answer names no transfer")
			}
			return withRetention(t), nil
		}
		var ae *APIError
		refused := errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound)
		if ctx.Err() != nil || refused {
			return Transfer{}, err
		}
		permanent := IsPermanent(err)
		wait := backoff.Delay(c.retry.base, c.retry.cap, attempt)
		if ae != nil {
			wait = max(wait, ae.retryAfter)
		}
		last := permanent || time.Now().Add(wait).After(deadline)
		if !permanent {
			// Also gives Heroku a moment to list what the failed attempt may have started.
			if err := backoff.Sleep(ctx, min(wait, max(time.Until(deadline), 0))); err != nil {
				return Transfer{}, err
			}
		}
		// A network error or a 5xx may hide a backup that did start; a refusal (unverified: 409 or
		// 422) may mean one of this database is already running, which is as good as ours.
		if t, ok := c.adopt(ctx, db, seen, ae != nil && ae.Status >= 400 && ae.Status < 500); ok {
			return withRetention(t), nil
		}
		if last {
			return Transfer{}, err
		}
	}
}

// adopt finds a backup of db that started after the transfer numbered seen, or, if running is
// set, one that is still running: the one with the highest number.
func (c *Client) adopt(ctx context.Context, db Database, seen int, running bool) (Transfer, bool) {
	ts, err := c.transfers(ctx, db)
	if err != nil {
		return Transfer{}, false
	}
	var best Transfer
	for _, t := range ts {
		if t.IsBackup() && db.isSource(t.FromName) && (t.Num > seen || (running && !t.Finished())) && t.Num > best.Num {
			best = t
		}
	}
	return best, best.Num > 0
}

// Wait polls a transfer until Heroku has finished it, backing off between polls (×1.5 from
// PollInterval up to MaxPollInterval), calling progress after each poll, and gives up after
// timeout (0: none) with an error matching ErrTimeout; Heroku may still be running the transfer
// then. A poll that fails after its retries does not end the wait: progress gets its error with
// the last state seen, so that an outage is reported while the wait goes on. A failed or
// cancelled transfer is a *TransferError with Heroku's last log lines.
func (c *Client) Wait(ctx context.Context, db Database, t Transfer, timeout time.Duration, progress func(Transfer, error)) (Transfer, error) {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var pollErr error // the last poll's error, when it was worth polling again
	fail := func(err error) (Transfer, error) {
		if parent.Err() == nil && ctx.Err() != nil {
			err = &waitTimeout{kind: t.kind(), timeout: timeout}
			if pollErr != nil {
				err = fmt.Errorf("%w; the last poll failed: %v", err, pollErr)
			}
		}
		return t, fmt.Errorf("heroku: wait for %s %s %s: %w", t.kind(), t.Name(), target(db), err)
	}
	interval := c.o.PollInterval
	for !t.Finished() {
		if err := backoff.Sleep(ctx, interval); err != nil {
			return fail(err)
		}
		interval = nextPoll(interval, c.o.MaxPollInterval)
		next, err := c.transfer(ctx, db, t.ref(), false)
		switch {
		case err == nil:
			t, pollErr = next, nil
		case ctx.Err() != nil || IsPermanent(err):
			return fail(err)
		default:
			// Heroku stayed unreachable for a whole retry budget: a capture may run for hours, so
			// keep polling until the timeout rather than give the backup up.
			pollErr = err
		}
		if progress != nil {
			progress(t, pollErr)
		}
	}
	if t.OK() {
		return t, nil
	}
	terr := &TransferError{Transfer: t}
	if v, err := c.transfer(ctx, db, t.ref(), true); err == nil {
		for _, l := range v.Logs[max(len(v.Logs)-10, 0):] {
			terr.Logs = append(terr.Logs, redact(l.Message, c.o.APIKey))
		}
	}
	return t, fmt.Errorf("heroku: %s %s: %w", t.kind(), target(db), terr)
}

// nextPoll is the wait after interval: half as long again, at most limit.
func nextPoll(interval, limit time.Duration) time.Duration {
	return min(interval+interval/2, limit)
}

// Transfer fetches one transfer of db's billing app by number.
func (c *Client) Transfer(ctx context.Context, db Database, num int) (Transfer, error) {
	t, err := c.transfer(ctx, db, strconv.Itoa(num), false)
	if err != nil {
		return Transfer{}, fmt.Errorf("heroku: transfer %d %s: %w", num, target(db), err)
	}
	return t, nil
}

func (c *Client) transfer(ctx context.Context, db Database, ref string, verbose bool) (Transfer, error) {
	path := appPath(db) + "/transfers/" + ref
	if verbose {
		path += "?verbose=true"
	}
	var t Transfer
	err := c.dataCall(ctx, http.MethodGet, path, nil, &t)
	return t, err
}

// transfers lists the transfers of db's billing app: backups, restores and copies of all its
// databases.
func (c *Client) transfers(ctx context.Context, db Database) ([]Transfer, error) {
	var ts []Transfer
	err := c.dataCall(ctx, http.MethodGet, appPath(db)+"/transfers", nil, &ts)
	return ts, err
}

// Retention tells how many manual backups Heroku keeps of db and which it keeps now
// (heroku-api.md §9).
func (c *Client) Retention(ctx context.Context, db Database) (Retention, error) {
	ts, err := c.transfers(ctx, db)
	if err != nil {
		return Retention{}, fmt.Errorf("heroku: manual backups %s: %w", target(db), err)
	}
	return retention(db, ts), nil
}

// retention picks db's manual backups out of its billing app's transfers. Unverified whether
// Heroku counts a failed capture, or counts per app rather than per database: every listed
// manual backup of this database counts here, which errs towards warning.
func retention(db Database, ts []Transfer) Retention {
	r := Retention{Plan: db.Plan}
	for _, t := range ts {
		if t.IsManual() && db.isSource(t.FromName) && t.DeletedAt.IsZero() && t.PurgedAt.IsZero() {
			r.Manual = append(r.Manual, t)
		}
	}
	sort.SliceStable(r.Manual, func(i, j int) bool {
		if !r.Manual[i].CreatedAt.Equal(r.Manual[j].CreatedAt.Time) {
			return r.Manual[i].CreatedAt.Before(r.Manual[j].CreatedAt.Time)
		}
		return r.Manual[i].Num < r.Manual[j].Num
	})
	if n := len(r.Manual); n > 0 {
		r.NumKeep = r.Manual[n-1].NumKeep // the newest: the plan may have changed since the oldest
	}
	if r.NumKeep <= 0 {
		r.NumKeep = documentedKeep(db.Plan)
		r.Documented = r.NumKeep > 0
	}
	return r
}

// Schedules lists db's backup schedules (heroku-api.md §9), without deleted ones.
func (c *Client) Schedules(ctx context.Context, db Database) ([]Schedule, error) {
	var all []Schedule
	if err := c.dataCall(ctx, http.MethodGet, dbPath(db)+"/transfer-schedules", nil, &all); err != nil {
		return nil, fmt.Errorf("heroku: backup schedules %s: %w", target(db), err)
	}
	var live []Schedule
	for _, s := range all {
		if s.DeletedAt.IsZero() {
			live = append(live, s)
		}
	}
	return live, nil
}

// Latest returns the newest successful backup of db — of this database, not merely the app's
// newest backup (heroku-api.md §4). None is an error wrapping ErrNoBackup.
func (c *Client) Latest(ctx context.Context, db Database) (Transfer, error) {
	ts, err := c.transfers(ctx, db)
	if err != nil {
		return Transfer{}, fmt.Errorf("heroku: latest backup %s: %w", target(db), err)
	}
	var ok []Transfer
	for _, t := range ts {
		if t.IsBackup() && t.OK() && t.DeletedAt.IsZero() && t.PurgedAt.IsZero() && db.isSource(t.FromName) {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		return Transfer{}, fmt.Errorf("heroku: latest backup %s: %w of %s (add-on %s, backups kept under app %s); take one with `heroku pg:backups:capture %s -a %s` or use BACKUP_MODE=capture",
			target(db), ErrNoBackup, db.Attachment, db.AddonName, db.BillingApp, db.Attachment, db.App)
	}
	sort.SliceStable(ok, func(i, j int) bool {
		if !ok[i].CreatedAt.Equal(ok[j].CreatedAt.Time) {
			return ok[i].CreatedAt.After(ok[j].CreatedAt.Time)
		}
		return ok[i].Num > ok[j].Num // same second: the later number is the later backup
	})
	return ok[0], nil
}

// PublicURL returns the backup's one-hour signed download URL (heroku-api.md §4). It is a
// secret: it prints redacted.
func (c *Client) PublicURL(ctx context.Context, db Database, t Transfer) (SignedURL, error) {
	var out struct {
		URL       string `json:"url"`
		ExpiresAt Time   `json:"expires_at"`
	}
	path := appPath(db) + "/transfers/" + strconv.Itoa(t.Num) + "/actions/public-url"
	if err := c.dataCall(idempotent(ctx), http.MethodPost, path, nil, &out); err != nil {
		return SignedURL{}, fmt.Errorf("heroku: download URL of backup %s %s: %w", t.Name(), target(db), err)
	}
	if out.URL == "" {
		return SignedURL{}, fmt.Errorf("heroku: download URL of backup %s %s: the answer holds no URL", t.Name(), target(db))
	}
	return SignedURL{URL: Secret(out.URL), ExpiresAt: out.ExpiresAt.Time}, nil
}

// Cancel asks Heroku to stop a running transfer. Cancelling twice is harmless, so the request
// is retried like a read.
func (c *Client) Cancel(ctx context.Context, db Database, t Transfer) error {
	if t.UUID == "" {
		return fmt.Errorf("heroku: cancel %s %s: the transfer's uuid is unknown (the API cancels by uuid only)", t.kind(), target(db))
	}
	path := appPath(db) + "/transfers/" + url.PathEscape(t.UUID) + "/actions/cancel"
	if err := c.dataCall(idempotent(ctx), http.MethodPost, path, nil, nil); err != nil {
		return fmt.Errorf("heroku: cancel %s %s %s: %w", t.kind(), t.Name(), target(db), err)
	}
	return nil
}

// Restore asks Heroku to restore db from the dump at backupURL (heroku-api.md §5): Heroku
// fetches it itself, so the URL must be HTTPS and readable without credentials (a presigned
// GET). The answer is the restore transfer; Wait follows it like a capture.
func (c *Client) Restore(ctx context.Context, db Database, backupURL string) (Transfer, error) {
	var t Transfer
	body := map[string]any{"backup_url": backupURL, "extensions": []string{}}
	if err := c.dataCall(ctx, http.MethodPost, dbPath(db)+"/restores", body, &t); err != nil {
		return Transfer{}, fmt.Errorf("heroku: restore %s: %w", target(db), err)
	}
	return t, nil
}
