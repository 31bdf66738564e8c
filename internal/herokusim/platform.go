package herokusim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// herokuError writes Heroku's error body, {"id": ..., "message": ...}.
func herokuError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

// authorized accepts "Bearer <token>" and Basic with an empty user and the token as password.
func (s *Sim) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return s.o.Token != "" && tok == s.o.Token
	}
	if b64, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return false
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		return user == "" && s.o.Token != "" && pass == s.o.Token
	}
	return false
}

// injected is the error body Heroku sends with a status forced by Faults.
func injected(status int) (id, msg string) {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests"
	case status == http.StatusUnauthorized:
		return "unauthorized", "Invalid credentials provided."
	case status == http.StatusForbidden:
		return "forbidden", "You do not have access to this resource."
	case status == http.StatusNotFound:
		return "not_found", "Couldn't find that resource."
	case status == http.StatusServiceUnavailable:
		return "unavailable", "The service is temporarily unavailable. Please try again later."
	case status >= 500:
		return "internal_server_error", "An internal server error occurred."
	default:
		return "bad_request", "The request could not be processed."
	}
}

// api wraps an API's routes: records the request, echoes a Request-Id, applies injected
// failures, checks the key.
func (s *Sim) api(name string, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(name, r)
		id := r.Header.Get("Request-Id")
		if id == "" {
			id = newID()
		}
		w.Header().Set("Request-Id", id)
		f, failed := s.faults.takeFailure(name, r.URL.Path)
		if name == "platform" {
			left := s.spendRateToken()
			if !failed && left < 0 {
				f, failed = failure{status: http.StatusTooManyRequests, retryAfter: rateRefill}, true
			}
			if failed && f.status == http.StatusTooManyRequests {
				left = 0
			}
			w.Header().Set("RateLimit-Remaining", fmt.Sprint(max(left, 0)))
		}
		if failed {
			if f.status == http.StatusTooManyRequests || f.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", fmt.Sprint(int((f.retryAfter+time.Second-1)/time.Second)))
			}
			id, msg := injected(f.status)
			herokuError(w, f.status, id, msg)
			return
		}
		if !s.authorized(r) {
			herokuError(w, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// The Platform API's rate limit: 4,500 tokens per account, refilled at about 75 a minute.
const (
	rateBudget = 4500
	rateRefill = time.Minute / 75
)

// spendRateToken takes one token from the account's budget and returns how many are left, or
// -1 when there was none: the request is then refused with 429, as Heroku does.
func (s *Sim) spendRateToken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.rateAt.IsZero() {
		s.rateAt = now
	}
	if n := int(now.Sub(s.rateAt) / rateRefill); n > 0 {
		s.rateLeft = min(s.rateLeft+n, rateBudget)
		s.rateAt = s.rateAt.Add(time.Duration(n) * rateRefill)
	}
	if s.rateLeft == 0 {
		return -1
	}
	s.rateLeft--
	return s.rateLeft
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (a *app) json() map[string]any {
	return map[string]any{"id": a.id, "name": a.name, "created_at": rfc3339(a.created), "updated_at": rfc3339(a.created),
		"released_at": rfc3339(a.created), "git_url": "https://git.heroku.com/" + a.name + ".git",
		"web_url": "https://" + a.name + ".herokuapp.com/", "maintenance": false, "acm": false,
		"build_stack":  map[string]any{"id": stableID("heroku-24"), "name": "heroku-24"},
		"stack":        map[string]any{"id": stableID("heroku-24"), "name": "heroku-24"},
		"region":       map[string]any{"id": stableID("us"), "name": "us"},
		"owner":        map[string]any{"id": stableID("account"), "email": accountEmail},
		"organization": nil, "team": nil, "space": nil, "internal_routing": nil, "archived_at": nil}
}

func ref(id, name string) map[string]any { return map[string]any{"id": id, "name": name} }

// json is an attachment as the Platform API writes it; with inclusion (Accept-Inclusion:
// addon:plan,config_vars, which the resolve action and attachment lists honour, and the CLI
// sends to both) it carries the plan and config vars.
func (a *attachment) json(inclusion bool) map[string]any {
	ad := map[string]any{"id": a.addon.id, "name": a.addon.name, "app": ref(a.addon.app.id, a.addon.app.name)}
	m := map[string]any{"id": a.id, "name": a.name, "namespace": a.namespace,
		"app": ref(a.app.id, a.app.name), "addon": ad,
		"created_at": rfc3339(a.created), "updated_at": rfc3339(a.created), "log_input_url": nil,
		"web_url": "https://addons-sso.heroku.com/apps/" + a.app.id + "/addons/" + a.addon.id}
	if inclusion {
		ad["plan"] = ref(stableID(a.addon.plan), a.addon.plan)
		m["config_vars"] = []string{a.name + "_URL"}
	}
	return m
}

// addonJSONLocked is an add-on as the Platform API writes it. Its config_vars are those it sets on
// its own app once provisioned: an API-created add-on's one, a seeded one's attachments' there.
// s.mu is held.
func (s *Sim) addonJSONLocked(ad *addon) map[string]any {
	vars := []string{}
	switch {
	case ad.state != "" && ad.stateAt(time.Now()) == "provisioned":
		vars = append(vars, ad.varName)
	case ad.state == "":
		for _, at := range s.atts {
			if at.addon == ad && at.app == ad.app {
				vars = append(vars, at.name+"_URL")
			}
		}
	}
	return ad.json(vars)
}

func (ad *addon) json(vars []string) map[string]any {
	service, _, _ := strings.Cut(ad.plan, ":")
	return map[string]any{"id": ad.id, "name": ad.name, "app": ref(ad.app.id, ad.app.name),
		"plan": ref(stableID(ad.plan), ad.plan), "addon_service": ref(stableID(service), service),
		"state": ad.stateAt(time.Now()), "config_vars": vars, "provider_id": ad.id[:8], "billed_price": nil,
		"web_url":    "https://addons-sso.heroku.com/apps/" + ad.app.id + "/addons/" + ad.id,
		"created_at": rfc3339(ad.created), "updated_at": rfc3339(ad.created)}
}

// stableID derives a fixed UUID-shaped id from a name (plan, region and stack ids are fixed on Heroku).
func stableID(name string) string {
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(name)))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

const accountEmail = "ops@example.com"

func wantsInclusion(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept-Inclusion"), "addon:plan")
}

// Platform serves the Platform API (api.heroku.com).
func (s *Sim) Platform() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": stableID("account"), "email": accountEmail, "name": "Ops",
			"created_at": "2019-03-01T10:00:00Z", "updated_at": "2024-05-02T11:00:00Z", "last_login": "2024-05-02T11:00:00Z",
			"two_factor_authentication": true, "verified": true, "beta": false, "allow_tracking": false,
			"default_organization": nil, "default_team": nil, "sms_number": nil, "suspended_at": nil, "delinquent_at": nil})
	})
	mux.HandleFunc("GET /apps/{app}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		writeJSON(w, 200, s.runtimeLocked(a).appJSON(a)) // region and stack as created (slugs.go)
	}))
	mux.HandleFunc("GET /apps/{app}/config-vars", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		vars := map[string]string{}
		for _, at := range s.atts {
			if !at.addon.provisioned(time.Now()) {
				continue // a provisioning add-on's variable appears once it is ready
			}
			// A namespaced attachment (e.g. a credential) does not override the plain one's variable.
			if _, taken := vars[at.name+"_URL"]; at.app == a && (!taken || at.namespace == nil) {
				vars[at.name+"_URL"] = at.addon.dsn
			}
		}
		for k, v := range s.runtimeLocked(a).config {
			vars[k] = v // the app's own variables, set through PATCH /apps/{app}/config-vars
		}
		writeJSON(w, 200, vars)
	}))
	mux.HandleFunc("GET /apps/{app}/addon-attachments", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var out []map[string]any
		for _, at := range s.atts {
			if at.app == a {
				out = append(out, at.json(wantsInclusion(r)))
			}
		}
		s.writeIDPage(w, r, out, "name")
	}))
	mux.HandleFunc("GET /apps/{app}/addons", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var out []map[string]any
		seen := map[*addon]bool{}
		for _, at := range s.atts {
			if at.app == a && !seen[at.addon] {
				seen[at.addon] = true
				out = append(out, s.addonJSONLocked(at.addon))
			}
		}
		s.writeIDPage(w, r, out, "name")
	}))
	mux.HandleFunc("POST /apps/{app}/addons", s.createAddon)
	mux.HandleFunc("DELETE /apps/{app}/addons/{id}", s.deleteAddon)
	mux.HandleFunc("GET /apps/{app}/addons/{id}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		ad := s.addonByLocked(r.PathValue("id"))
		if ad == nil || ad.app != a {
			herokuError(w, 404, "not_found", "Couldn't find that add on.")
			return
		}
		writeJSON(w, 200, s.addonJSONLocked(ad))
	}))
	// The account's add-ons on every app it can see (the simulator's one account sees them all),
	// each once, however many apps it is attached to.
	mux.HandleFunc("GET /addons", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ids := make([]string, 0, len(s.addons))
		for id := range s.addons {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		out := make([]map[string]any, len(ids))
		for i, id := range ids {
			out[i] = s.addonJSONLocked(s.addons[id])
		}
		s.writeIDPage(w, r, out, "name")
	})
	mux.HandleFunc("GET /addons/{id}", s.withAddon(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		writeJSON(w, 200, s.addonJSONLocked(ad))
	}))
	mux.HandleFunc("GET /addons/{id}/addon-attachments", s.withAddon(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		var out []map[string]any
		for _, at := range s.atts {
			if at.addon == ad {
				out = append(out, at.json(wantsInclusion(r)))
			}
		}
		s.writeIDPage(w, r, out, "name")
	}))
	mux.HandleFunc("POST /actions/addon-attachments/resolve", s.resolve)
	s.dynoRoutes(mux)
	s.runtimeRoutes(mux) // apps, slugs, releases, config vars, formation, buildpacks, domains (slugs.go)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		herokuError(w, 404, "not_found", "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?")
	})
	api := s.api("platform", mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, logplexPrefix) {
			s.serveLogSession(w, r) // logplex, not the API: no key, no rate limit
			return
		}
		api.ServeHTTP(w, r)
	})
}

// withApp serves a request about the app named in the path, under the lock, or answers Heroku's
// 404 when there is no such app.
func (s *Sim) withApp(f func(http.ResponseWriter, *http.Request, *app)) http.HandlerFunc {
	return withLocked(s, "app", s.appByLocked, "Couldn't find that app.", f)
}

// withAddon is withApp for the add-on, by id or name, in the path.
func (s *Sim) withAddon(f func(http.ResponseWriter, *http.Request, *addon)) http.HandlerFunc {
	return withLocked(s, "id", s.addonByLocked, "Couldn't find that add on.", f)
}

func withLocked[T any](s *Sim, key string, find func(string) *T, notFound string, f func(http.ResponseWriter, *http.Request, *T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v := find(r.PathValue(key))
		if v == nil {
			herokuError(w, 404, "not_found", notFound)
			return
		}
		f(w, r, v)
	}
}

// addonByLocked finds an add-on by id or name, as the Platform API accepts either.
func (s *Sim) addonByLocked(idOrName string) *addon {
	if ad := s.addons[idOrName]; ad != nil {
		return ad
	}
	for _, ad := range s.addons {
		if ad.name == idOrName {
			return ad
		}
	}
	return nil
}

// resolve is POST /actions/addon-attachments/resolve: every attachment on the app that the
// argument can name — attachment name with or without _URL, add-on name or id, or
// other-app::NAME for an attachment on another app — namespaced ones included. An optional
// addon_service narrows the answer to one service (e.g. heroku-postgresql).
func (s *Sim) resolve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Attachment   string  `json:"addon_attachment"`
		App          *string `json:"app"`
		AddonService string  `json:"addon_service"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Attachment == "" {
		herokuError(w, 422, "invalid_params", "addon_attachment is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	arg, appName := body.Attachment, ""
	if body.App != nil {
		appName = *body.App
	}
	if other, name, ok := strings.Cut(arg, "::"); ok {
		appName, arg = other, name
	}
	var a *app
	if appName != "" {
		if a = s.appByLocked(appName); a == nil {
			herokuError(w, 404, "not_found", "Couldn't find that app.")
			return
		}
	}
	upper := strings.ToUpper(arg)
	out := []any{}
	for _, at := range s.atts {
		if a != nil && at.app != a {
			continue
		}
		if body.AddonService != "" && !strings.HasPrefix(at.addon.plan, body.AddonService+":") {
			continue
		}
		// Without an app only add-on names are global; attachment names need the app.
		byName := a != nil && (at.name == upper || at.name+"_URL" == upper)
		if byName || at.addon.name == arg || at.addon.id == arg {
			out = append(out, at.json(wantsInclusion(r)))
		}
	}
	if len(out) == 0 {
		herokuError(w, 404, "not_found", "Couldn't find that add on attachment.")
		return
	}
	writeJSON(w, 200, out)
}
