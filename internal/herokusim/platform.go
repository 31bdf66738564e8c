package herokusim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func herokuError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

// authorized accepts "Bearer <token>" and Basic with an empty user and the token as password.
func (s *Sim) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return tok == s.o.Token
	}
	if b64, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return false
		}
		_, pass, _ := strings.Cut(string(raw), ":")
		return pass == s.o.Token
	}
	return false
}

// api wraps an API's routes: records the request, applies injected failures, checks the key.
func (s *Sim) api(name string, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{API: name, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		s.mu.Unlock()
		if name == "platform" {
			w.Header().Set("RateLimit-Remaining", "4499")
		}
		if f, ok := s.faults.takeFailure(name); ok {
			if f.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", fmt.Sprint(int(f.retryAfter/time.Second)))
				herokuError(w, f.status, "rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests")
			} else {
				herokuError(w, f.status, "unavailable", "The service is temporarily unavailable.")
			}
			return
		}
		if !s.authorized(r) {
			herokuError(w, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (a *app) json() map[string]any {
	return map[string]any{"id": a.id, "name": a.name, "created_at": rfc3339(a.created), "updated_at": rfc3339(a.created),
		"region": map[string]any{"id": "59accabd-516d-4f0e-83e6-6e3757701145", "name": "us"}, "stack": map[string]any{"name": "heroku-24"}}
}

// attachmentJSON is an attachment as the Platform API writes it; with inclusion (the resolve
// action's Accept-Inclusion: addon:plan,config_vars) it carries the plan and config vars.
func (a *attachment) json(inclusion bool) map[string]any {
	ad := map[string]any{"id": a.addon.id, "name": a.addon.name, "app": map[string]any{"id": a.addon.app.id, "name": a.addon.app.name}}
	m := map[string]any{"id": a.id, "name": a.name, "namespace": a.namespace,
		"app": map[string]any{"id": a.app.id, "name": a.app.name}, "addon": ad,
		"created_at": rfc3339(a.addon.created), "updated_at": rfc3339(a.addon.created),
		"web_url": "https://addons-sso.heroku.com/apps/" + a.app.id + "/addons/" + a.addon.id}
	if inclusion {
		ad["plan"] = map[string]any{"id": newIDFor(a.addon.plan), "name": a.addon.plan}
		m["config_vars"] = []string{a.name + "_URL"}
	}
	return m
}

// newIDFor derives a stable id from a name (plan ids are fixed in the real API).
func newIDFor(name string) string {
	h := fmt.Sprintf("%032x", []byte(name))[:32]
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func wantsInclusion(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept-Inclusion"), "addon:plan")
}

// Platform serves the Platform API (api.heroku.com).
func (s *Sim) Platform() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": newIDFor("account"), "email": "ops@example.com", "name": "Ops",
			"created_at": "2019-03-01T10:00:00Z", "updated_at": "2024-05-02T11:00:00Z", "two_factor_authentication": true})
	})
	mux.HandleFunc("GET /oauth/authorizations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []any{map[string]any{"id": newIDFor("authorization"), "description": "pgoffsite",
			"access_token": map[string]any{"id": newIDFor("token"), "token": s.o.Token, "expires_in": nil},
			"created_at":   "2024-05-02T11:00:00Z", "updated_at": "2024-05-02T11:00:00Z", "scope": []string{"global"}}})
	})
	mux.HandleFunc("GET /apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.apps[r.PathValue("app")]
		if a == nil {
			herokuError(w, 404, "not_found", "Couldn't find that app.")
			return
		}
		writeJSON(w, 200, a.json())
	})
	mux.HandleFunc("GET /apps/{app}/config-vars", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.apps[r.PathValue("app")]
		if a == nil {
			herokuError(w, 404, "not_found", "Couldn't find that app.")
			return
		}
		vars := map[string]string{}
		for _, at := range s.atts {
			if at.app == a {
				vars[at.name+"_URL"] = at.addon.dsn
			}
		}
		writeJSON(w, 200, vars)
	})
	mux.HandleFunc("GET /apps/{app}/addon-attachments", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.apps[r.PathValue("app")]
		if a == nil {
			herokuError(w, 404, "not_found", "Couldn't find that app.")
			return
		}
		out := []any{}
		for _, at := range s.atts {
			if at.app == a {
				out = append(out, at.json(wantsInclusion(r)))
			}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /addons/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := s.addonByIDOrName(r.PathValue("id"))
		if ad == nil {
			herokuError(w, 404, "not_found", "Couldn't find that add on.")
			return
		}
		writeJSON(w, 200, map[string]any{"id": ad.id, "name": ad.name, "app": map[string]any{"id": ad.app.id, "name": ad.app.name},
			"plan": map[string]any{"id": newIDFor(ad.plan), "name": ad.plan}, "state": "provisioned",
			"addon_service": map[string]any{"name": strings.SplitN(ad.plan, ":", 2)[0]},
			"created_at":    rfc3339(ad.created), "updated_at": rfc3339(ad.created)})
	})
	mux.HandleFunc("GET /addons/{id}/addon-attachments", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := s.addonByIDOrName(r.PathValue("id"))
		if ad == nil {
			herokuError(w, 404, "not_found", "Couldn't find that add on.")
			return
		}
		out := []any{}
		for _, at := range s.atts {
			if at.addon == ad {
				out = append(out, at.json(wantsInclusion(r)))
			}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("POST /actions/addon-attachments/resolve", s.resolve)
	return s.api("platform", mux)
}

func (s *Sim) addonByIDOrName(id string) *addon {
	if ad := s.addons[id]; ad != nil {
		return ad
	}
	for _, ad := range s.addons {
		if ad.name == id {
			return ad
		}
	}
	return nil
}

// resolve is POST /actions/addon-attachments/resolve: every attachment the argument can name on
// the app — by attachment name (with or without _URL), add-on name, add-on service name, or
// other-app::NAME.
func (s *Sim) resolve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Attachment string `json:"addon_attachment"`
		App        string `json:"app"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Attachment == "" {
		herokuError(w, 422, "invalid_params", "addon_attachment is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	appName, arg := body.App, body.Attachment
	if other, name, ok := strings.Cut(arg, "::"); ok {
		appName, arg = other, name
	}
	a := s.apps[appName]
	if a == nil {
		herokuError(w, 404, "not_found", "Couldn't find that app.")
		return
	}
	name := strings.TrimSuffix(strings.ToUpper(arg), "_URL")
	out := []any{}
	for _, at := range s.atts {
		if at.app != a {
			continue
		}
		service := strings.SplitN(at.addon.plan, ":", 2)[0]
		if at.name == name || at.addon.name == arg || service == arg {
			out = append(out, at.json(wantsInclusion(r)))
		}
	}
	if len(out) == 0 {
		herokuError(w, 404, "not_found", "Couldn't find that add on attachment.")
		return
	}
	writeJSON(w, 200, out)
}
