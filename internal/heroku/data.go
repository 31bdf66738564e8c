package heroku

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/backoff"
)

// ErrNoBackup reports that Heroku has no successful backup of a database.
var ErrNoBackup = errors.New("no successful backup")

// TransferError is a capture that Heroku reports as failed or cancelled.
type TransferError struct {
	Transfer Transfer
	Logs     []string // Heroku's last log lines for the transfer
}

func (e *TransferError) Error() string {
	state := "failed"
	if !e.Transfer.CanceledAt.IsZero() {
		state = "was cancelled"
	}
	msg := fmt.Sprintf("%s %s %s on Heroku", e.Transfer.kind(), e.Transfer.Name(), state)
	if len(e.Logs) > 0 {
		msg += "; Heroku's last log lines: " + strings.Join(e.Logs, " | ")
	}
	return msg
}

func target(db Database) string { return "app=" + db.App + " database=" + db.Attachment }

// Capture asks Heroku for a new backup of db (heroku-api.md §2).
func (c *Client) Capture(ctx context.Context, db Database) (Transfer, error) {
	t, err := c.capture(ctx, db)
	if err != nil {
		return t, fmt.Errorf("heroku: capture %s: %w", target(db), err)
	}
	return t, nil
}

func (c *Client) capture(ctx context.Context, db Database) (Transfer, error) {
	var info struct{}
	if err := c.data(ctx, http.MethodGet, "/client/v11/databases/"+db.AddonID, &info); err != nil {
		if IsNotFound(err) {
			return Transfer{}, fmt.Errorf("the database %s is not available on Heroku's Data API (not provisioned yet, or deprovisioned): %w", db.AddonName, err)
		}
		return Transfer{}, err
	}
	// The capture POST is not idempotent: know the newest transfer before it, so that after an
	// ambiguous failure the backup it may have started is found instead of starting a second.
	before, err := c.transfers(ctx, db.BillingApp)
	if err != nil {
		return Transfer{}, err
	}
	maxNum := 0
	for _, t := range before {
		maxNum = max(maxNum, t.Num)
	}
	deadline := time.Now().Add(c.o.RetryBudget)
	for attempt := 0; ; attempt++ {
		var t Transfer
		err := c.data(ctx, http.MethodPost, "/client/v11/databases/"+db.AddonID+"/backups", &t)
		if err == nil {
			return t, nil
		}
		if IsPermanent(err) || ctx.Err() != nil {
			return Transfer{}, err
		}
		// Network error, 429 or 5xx: the backup may have started all the same.
		if after, lerr := c.transfers(ctx, db.BillingApp); lerr == nil {
			for _, t := range after {
				if t.Num > maxNum && t.IsBackup() && db.isSource(t.FromName) {
					return t, nil
				}
			}
		}
		wait := backoff.Delay(time.Second, 32*time.Second, attempt)
		if time.Now().Add(wait).After(deadline) {
			return Transfer{}, err
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return Transfer{}, err
		}
	}
}

func (db Database) isSource(fromName string) bool {
	for _, n := range db.SourceNames {
		if strings.EqualFold(strings.TrimSuffix(n, "_URL"), strings.TrimSuffix(fromName, "_URL")) {
			return true
		}
	}
	return false
}

// Wait polls a transfer until Heroku has finished it, backing off between polls, and gives up
// after timeout. A failed or cancelled transfer is a *TransferError with Heroku's last log lines.
func (c *Client) Wait(ctx context.Context, db Database, t Transfer, timeout time.Duration, progress func(Transfer)) (Transfer, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	interval := c.o.PollInterval
	for !t.Finished() {
		if err := backoff.Sleep(ctx, interval); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return t, fmt.Errorf("heroku: wait for %s %s %s: not finished after %s", t.kind(), t.Name(), target(db), timeout)
			}
			return t, fmt.Errorf("heroku: wait for %s %s %s: %w", t.kind(), t.Name(), target(db), err)
		}
		interval = min(time.Duration(float64(interval)*1.5), c.o.MaxPollInterval)
		next, err := c.transfer(ctx, db, fmt.Sprint(t.Num), false)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				return t, fmt.Errorf("heroku: wait for %s %s %s: not finished after %s", t.kind(), t.Name(), target(db), timeout)
			}
			return t, fmt.Errorf("heroku: wait for %s %s %s: %w", t.kind(), t.Name(), target(db), err)
		}
		t = next
		if progress != nil {
			progress(t)
		}
	}
	if t.OK() {
		return t, nil
	}
	terr := &TransferError{Transfer: t}
	if v, err := c.transfer(ctx, db, fmt.Sprint(t.Num), true); err == nil {
		for _, l := range v.Logs[max(len(v.Logs)-10, 0):] {
			terr.Logs = append(terr.Logs, l.Message)
		}
	}
	return t, fmt.Errorf("heroku: %s %s: %w", t.kind(), target(db), terr)
}

// kind names what a transfer does, for messages.
func (t Transfer) kind() string {
	if t.ToType == "pg_restore" {
		return "restore"
	}
	return "backup"
}

// Transfer fetches one transfer of db's billing app by number.
func (c *Client) Transfer(ctx context.Context, db Database, num int) (Transfer, error) {
	t, err := c.transfer(ctx, db, fmt.Sprint(num), false)
	if err != nil {
		return t, fmt.Errorf("heroku: transfer %d %s: %w", num, target(db), err)
	}
	return t, nil
}

func (c *Client) transfer(ctx context.Context, db Database, id string, verbose bool) (Transfer, error) {
	path := "/client/v11/apps/" + db.BillingApp + "/transfers/" + id
	if verbose {
		path += "?verbose=true"
	}
	var t Transfer
	err := c.data(ctx, http.MethodGet, path, &t)
	return t, err
}

func (c *Client) transfers(ctx context.Context, app string) ([]Transfer, error) {
	var ts []Transfer
	err := c.data(ctx, http.MethodGet, "/client/v11/apps/"+app+"/transfers", &ts)
	return ts, err
}

// Latest returns the newest successful backup of db — of this database, not merely the app's
// newest backup (heroku-api.md §4).
func (c *Client) Latest(ctx context.Context, db Database) (Transfer, error) {
	ts, err := c.transfers(ctx, db.BillingApp)
	if err != nil {
		return Transfer{}, fmt.Errorf("heroku: latest backup %s: %w", target(db), err)
	}
	var ok []Transfer
	for _, t := range ts {
		if t.IsBackup() && t.OK() && t.DeletedAt.IsZero() && db.isSource(t.FromName) {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		return Transfer{}, fmt.Errorf("heroku: latest backup %s: %w of %s on %s; take one with `heroku pg:backups:capture %s -a %s` or use BACKUP_MODE=capture",
			target(db), ErrNoBackup, db.Attachment, db.BillingApp, db.Attachment, db.App)
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].CreatedAt.After(ok[j].CreatedAt.Time) })
	return ok[0], nil
}

// PublicURL returns the backup's one-hour signed download URL (heroku-api.md §4).
func (c *Client) PublicURL(ctx context.Context, db Database, t Transfer) (SignedURL, error) {
	var out struct {
		URL       string `json:"url"`
		ExpiresAt Time   `json:"expires_at"`
	}
	path := fmt.Sprintf("/client/v11/apps/%s/transfers/%d/actions/public-url", db.BillingApp, t.Num)
	if err := c.data(idempotent(ctx), http.MethodPost, path, &out); err != nil {
		return SignedURL{}, fmt.Errorf("heroku: download URL of backup %s %s: %w", t.Name(), target(db), err)
	}
	if out.URL == "" {
		return SignedURL{}, fmt.Errorf("heroku: download URL of backup %s %s: the answer holds no URL", t.Name(), target(db))
	}
	return SignedURL{URL: Secret(out.URL), ExpiresAt: out.ExpiresAt.Time}, nil
}

// Cancel asks Heroku to stop a running transfer (by uuid, as the API wants).
func (c *Client) Cancel(ctx context.Context, db Database, t Transfer) error {
	path := "/client/v11/apps/" + db.BillingApp + "/transfers/" + t.UUID + "/actions/cancel"
	if err := c.data(ctx, http.MethodPost, path, nil); err != nil {
		return fmt.Errorf("heroku: cancel backup %s %s: %w", t.Name(), target(db), err)
	}
	return nil
}

// Restore asks Heroku to restore db from the dump at backupURL (heroku-api.md §5): Heroku
// fetches it itself, so the URL must be HTTPS and readable without credentials (a presigned
// GET). The answer is the restore transfer; Wait follows it like a capture.
func (c *Client) Restore(ctx context.Context, db Database, backupURL string) (Transfer, error) {
	var t Transfer
	body := map[string]any{"backup_url": backupURL, "extensions": []string{}}
	if err := c.dataJSON(ctx, http.MethodPost, "/client/v11/databases/"+db.AddonID+"/restores", body, &t); err != nil {
		return t, fmt.Errorf("heroku: restore %s: %w", target(db), err)
	}
	return t, nil
}
