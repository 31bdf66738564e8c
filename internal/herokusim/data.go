package herokusim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Data serves the Data API (api.data.heroku.com), where backups are called transfers. Transfers
// live under the add-on's billing app only: asking for them under an app the database is merely
// attached to answers 404, as Heroku does.
func (s *Sim) Data() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /client/v11/databases/{id}", s.withDatabase(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		writeJSON(w, 200, s.databaseJSONLocked(ad))
	}))
	mux.HandleFunc("POST /client/v11/databases/{id}/backups", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ad := s.databaseLocked(r.PathValue("id"))
		s.mu.Unlock()
		if ad == nil {
			notFoundHTML(w)
			return
		}
		view, _ := s.capture(ad, nil)
		writeJSON(w, http.StatusCreated, view)
	})
	mux.HandleFunc("POST /client/v11/databases/{id}/restores", s.handleRestore)
	s.scheduleRoutes(mux)
	// Every /client/v11/apps/{app} path takes the app's name or its id: the CLI polls a restore
	// under the add-on's app id.
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.appByLocked(r.PathValue("app"))
		if a == nil {
			herokuError(w, 404, "not_found", "Couldn't find that app.")
			return
		}
		// Deleted backups (by a user or by retention) are no longer listed; the CLI shows every
		// transfer it gets.
		out := []any{}
		for _, t := range s.transfers[a.name] {
			if t.deleted.IsZero() {
				out = append(out, t.json(false))
			}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"), true)
		if t == nil {
			transferNotFound(w)
			return
		}
		writeJSON(w, 200, t.json(r.URL.Query().Get("verbose") == "true"))
	})
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{id}/actions/public-url", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"), true)
		switch {
		case t == nil:
			transferNotFound(w)
		case !t.deleted.IsZero():
			herokuError(w, 404, "not_found", fmt.Sprintf("Backup %s has been deleted.", t.name()))
		case !t.ok():
			// Unverified: what Heroku answers for a backup without a file; a client must not ask.
			herokuError(w, 422, "invalid_params", fmt.Sprintf("Backup %s did not succeed: it has no file to download.", t.name()))
		default:
			now := s.now()
			ttl := s.faults.ttl(s.o.URLTTL)
			writeJSON(w, 200, map[string]any{"url": s.signLocked(t, now, ttl), "expires_at": now.Add(ttl).Format(dataTime)})
		}
	})
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{id}/actions/cancel", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		// By uuid only (heroku-api.md §5): a client that sends the number gets a 404.
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"), false)
		if t == nil {
			s.mu.Unlock()
			transferNotFound(w)
			return
		}
		cancel, done := t.cancel, t.done
		s.mu.Unlock()
		if cancel != nil {
			cancel()
			// The capture goroutine records the cancellation; the answer shows it.
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, 200, t.json(false))
	})
	mux.HandleFunc("DELETE /client/v11/apps/{app}/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"), true)
		if t == nil {
			transferNotFound(w)
			return
		}
		if t.deleted.IsZero() {
			t.deleted = s.now()
			t.updated = t.deleted
		}
		writeJSON(w, 200, t.json(false))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { notFoundHTML(w) })
	return s.api("data", mux)
}

// databaseLocked finds a Postgres add-on by id: the Data API knows nothing of other add-ons.
func (s *Sim) databaseLocked(id string) *addon {
	if ad := s.addons[id]; ad != nil && ad.postgres() {
		return ad
	}
	return nil
}

func (s *Sim) databaseJSONLocked(ad *addon) map[string]any {
	size := "7.9 MB"
	for _, t := range s.transfers[ad.app.name] {
		if t.addon == ad && t.source != nil {
			size = humanBytes(*t.source)
		}
	}
	return map[string]any{
		"addon_id": ad.id, "name": ad.name, "plan": ad.plan, "num_bytes": nil, "following": nil,
		"created_at": ad.created.Format(dataTime), "resource_url": "postgres://ec2-0-0-0-0.compute-1.amazonaws.com:5432/d0",
		"info": []any{
			map[string]any{"name": "Plan", "values": []string{planTitle(ad.plan)}},
			map[string]any{"name": "Status", "values": []string{"Available"}},
			map[string]any{"name": "HA Status", "values": []string{"Available"}},
			map[string]any{"name": "Data Size", "values": []string{size}},
			map[string]any{"name": "Tables", "values": []string{"2"}},
			map[string]any{"name": "PG Version", "values": []string{"15.7"}},
			map[string]any{"name": "Connections", "values": []string{"3/400"}},
			map[string]any{"name": "Created", "values": []string{ad.created.Format("2006-01-02 15:04")}},
			map[string]any{"name": "Data Encryption", "values": []string{"In Use"}},
		},
	}
}

// planTitle is how the Data API shows a plan: "heroku-postgresql:standard-0" → "Standard 0".
func planTitle(plan string) string {
	_, p, _ := strings.Cut(plan, ":")
	b := []byte(p)
	for i := range b {
		if b[i] == '-' {
			b[i] = ' '
		}
		if (i == 0 || b[i-1] == ' ') && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// humanBytes copies the text Heroku's Data API gives as "Data Size" ("7.9 MB": powers of 1024
// with decimal names), which the real Heroku CLI prints: the simulator answers as Heroku does, so
// pgoffsite's own rule for sizes (internal/units) does not apply here.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// notFoundHTML is how the Data API has answered an unknown database: 404, labelled JSON, not JSON.
func notFoundHTML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, "<h1>Not Found</h1>")
}

func transferNotFound(w http.ResponseWriter) {
	herokuError(w, 404, "not_found", "Couldn't find that transfer.")
}

// transferLocked finds a transfer of app (its billing app, by name or id) by uuid, or by number
// if byNum.
func (s *Sim) transferLocked(app, id string, byNum bool) *transfer {
	a := s.appByLocked(app)
	if a == nil {
		return nil
	}
	num, err := strconv.Atoi(id)
	byNum = byNum && err == nil
	for _, t := range s.transfers[a.name] {
		if (byNum && t.num == num) || t.uuid == id {
			return t
		}
	}
	return nil
}
