package herokusim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/netguard"
)

// handleRestore is POST /client/v11/databases/{id}/restores (heroku-api.md §5): Heroku fetches
// the dump at backup_url itself and restores it into the database, replacing what is there.
func (s *Sim) handleRestore(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ad := s.databaseLocked(r.PathValue("id"))
	s.mu.Unlock()
	if ad == nil {
		notFoundHTML(w)
		return
	}
	var body struct {
		BackupURL string `json:"backup_url"`
	}
	json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	u, err := url.Parse(body.BackupURL)
	// Heroku restores only from HTTPS URLs; http on loopback stands in for them in tests.
	if err != nil || u.Host == "" || !netguard.Allowed(u) {
		herokuError(w, http.StatusUnprocessableEntity, "invalid_params", "backup_url must be an HTTPS URL Heroku can download")
		return
	}
	writeJSON(w, http.StatusCreated, s.restore(ad, body.BackupURL))
}

// restore downloads the dump and loads it with pg_restore --clean, in the background, and returns
// the transfer as the 201 answer shows it.
func (s *Sim) restore(ad *addon, backupURL string) map[string]any {
	s.mu.Lock()
	t := s.newTransferLocked(ad)
	t.restoreFrom = backupURL
	view := t.json(false)
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer close(t.done)
		defer cancel()
		s.update(func(now time.Time) {
			t.started, t.updated = now, now
			t.logs = append(t.logs, logLine{now, "info", "Starting restore of " + t.name() + " to " + t.fromName})
		})
		size, lines, ok := s.pgRestore(ctx, ad.dsn, backupURL)
		s.update(func(now time.Time) {
			t.finishedAt, t.updated, t.succeeded, t.processed = now, now, &ok, size
			t.source = &size
			level := "info"
			if !ok {
				level = "error"
			}
			for _, l := range lines {
				t.logs = append(t.logs, logLine{now, level, l})
			}
		})
	}()
	return view
}

// pgRestore restores the dump at backupURL as Heroku does: replacing existing objects, without
// owners or privileges. A backup's own to_url is read from the simulator's storage, as Heroku reads
// its own bucket; any other URL is downloaded to a file first (pg_restore cannot read a custom
// archive from a URL).
func (s *Sim) pgRestore(ctx context.Context, dsn, backupURL string) (int64, []string, bool) {
	path, own := s.ownBackup(backupURL)
	if own && path == "" {
		return 0, []string{"htcat: error: the backup URL answered 404 Not Found"}, false
	}
	if !own {
		var lines []string
		if path, lines = s.download(ctx, backupURL); path == "" {
			return 0, lines, false
		}
		defer os.Remove(path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, []string{"htcat: error: " + err.Error()}, false
	}
	size := fi.Size()
	pgRestore := filepath.Join(filepath.Dir(s.o.PgDump), "pg_restore")
	if _, err := os.Stat(pgRestore); err != nil {
		pgRestore = "pg_restore"
	}
	cmd := exec.CommandContext(ctx, pgRestore, "--clean", "--if-exists", "--no-owner", "--no-acl", "-d", dsn, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if err != nil {
		return size, append(lines, "pg_restore: error: "+err.Error()), false
	}
	return size, append(lines, "Restore completed"), true
}

// ownBackup tells whether backupURL is one of this account's backups' to_url, and then the file of
// that backup ("" when it is deleted or has none).
func (s *Sim) ownBackup(backupURL string) (path string, own bool) {
	if !strings.HasPrefix(backupURL, "https://xfrtu.s3.amazonaws.com/") {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range s.transfers {
		for _, t := range ts {
			if t.restoreFrom == "" && t.toURL() == backupURL && t.ok() && t.deleted.IsZero() {
				return t.path, true
			}
		}
	}
	return "", true
}

// download fetches backupURL into a temporary file and returns its path, or "" and log lines.
func (s *Sim) download(ctx context.Context, backupURL string) (string, []string) {
	s.mu.Lock()
	client := s.fetch
	s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, backupURL, nil)
	if err != nil {
		return "", []string{"htcat: error: invalid backup URL"}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", []string{"htcat: error: cannot download the backup"}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", []string{fmt.Sprintf("htcat: error: the backup URL answered %s", resp.Status)}
	}
	f, err := os.CreateTemp(s.o.DumpDir, "restore-*.dump")
	if err != nil {
		return "", []string{"htcat: error: " + err.Error()}
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", []string{"htcat: error: download interrupted"}
	}
	return f.Name(), nil
}

// SetFetchClient sets the HTTP client restores download backup URLs with (one that trusts the
// simulator's own TLS certificate, say).
func (s *Sim) SetFetchClient(c *http.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetch = c
}
