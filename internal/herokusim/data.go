package herokusim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Data serves the Data API (api.data.heroku.com), where backups are called transfers.
func (s *Sim) Data() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /client/v11/databases/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ad := s.addons[r.PathValue("id")]
		s.mu.Unlock()
		if ad == nil {
			notFoundHTML(w)
			return
		}
		writeJSON(w, 200, map[string]any{"addon_id": ad.id, "name": ad.name, "plan": ad.plan, "created_at": ad.created.Format(dataTime),
			"info": []any{
				map[string]any{"name": "Plan", "values": []string{ad.plan}},
				map[string]any{"name": "Status", "values": []string{"Available"}},
				map[string]any{"name": "Data Size", "values": []string{"8.2 MB"}},
				map[string]any{"name": "PG Version", "values": []string{"15.18"}},
			}})
	})
	mux.HandleFunc("POST /client/v11/databases/{id}/backups", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ad := s.addons[r.PathValue("id")]
		s.mu.Unlock()
		if ad == nil {
			notFoundHTML(w)
			return
		}
		t := s.capture(ad)
		writeJSON(w, http.StatusCreated, t.json(false))
	})
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []any{}
		for _, t := range s.transfers[r.PathValue("app")] {
			out = append(out, t.json(false))
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"))
		if t == nil {
			notFoundHTML(w)
			return
		}
		writeJSON(w, 200, t.json(r.URL.Query().Get("verbose") == "true"))
	})
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{id}/actions/public-url", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"))
		if t == nil || t.path == "" {
			herokuError(w, 404, "not_found", "Couldn't find that backup.")
			return
		}
		now := s.o.Now().UTC()
		ttl := s.faults.ttl(s.o.URLTTL)
		writeJSON(w, 200, map[string]any{"url": s.signLocked(t, now, ttl), "expires_at": now.Add(ttl).Format(dataTime)})
	})
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{id}/actions/cancel", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"))
		if t == nil {
			s.mu.Unlock()
			notFoundHTML(w)
			return
		}
		cancel := t.cancel
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		// The capture goroutine records the cancellation; wait for it briefly so the answer shows it.
		for i := 0; i < 50; i++ {
			s.mu.Lock()
			done := t.finished()
			s.mu.Unlock()
			if done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, 200, t.json(false))
	})
	mux.HandleFunc("DELETE /client/v11/apps/{app}/transfers/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.transferLocked(r.PathValue("app"), r.PathValue("id"))
		if t == nil {
			notFoundHTML(w)
			return
		}
		t.deleted = s.o.Now().UTC()
		writeJSON(w, 200, t.json(false))
	})
	return s.api("data", mux)
}

// notFoundHTML is how the Data API has answered an unknown database: 404, labelled JSON, not JSON.
func notFoundHTML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, "<h1>Not Found</h1>")
}

// transferLocked finds a transfer of app (its billing app) by number or uuid.
func (s *Sim) transferLocked(app, id string) *transfer {
	num, err := strconv.Atoi(id)
	for _, t := range s.transfers[app] {
		if (err == nil && t.num == num) || t.uuid == id {
			return t
		}
	}
	return nil
}
