package herokusim

// Add-on provisioning (Platform API, heroku-go v5's schema), for restore drills:
//
//	POST   /apps/{app}/addons       {"plan", "name"?, "attachment": {"name"}?, "config"?}
//	       → 202 the add-on, "state": "provisioning" (Heroku Postgres provisions asynchronously);
//	       422 invalid_params for an unknown plan or a name already taken
//	GET    /apps/{app}/addons/{id or name} → 200 the add-on: "state" provisioning → provisioned
//	       once ProvisionDelay has passed and its database exists; "config_vars"
//	       ["HEROKU_POSTGRESQL_<COLOR>_URL"] (empty while provisioning)
//	GET    /apps/{app}/addons       → 200 the app's add-ons
//	DELETE /apps/{app}/addons/{id or name} → 200 the add-on, "state": "deprovisioned"; its
//	       attachment and config var are gone and its database is dropped
//
// The config var appears on the app (GET /apps/{app}/config-vars) only once the add-on is
// provisioned. A heroku-postgresql add-on is backed by a fresh database on the server that
// Options.PostgresAdmin names. Faults.StallProvisioning keeps add-ons provisioning forever;
// Faults.FailAddonDeletes makes deletions fail.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var colors = []string{"PINK", "ONYX", "AMBER", "COBALT", "CRIMSON", "SILVER", "TEAL", "OLIVE", "GOLD", "IVORY"}

// provisioned tells whether the add-on is ready; add-ons made with AddDatabase always are.
func (ad *addon) provisioned(now time.Time) bool {
	return ad.state == "" || (ad.state == "provisioning" && ad.dsn != "" && !ad.stuck && !now.Before(ad.readyAt))
}

func (ad *addon) stateAt(now time.Time) string {
	switch {
	case ad.state == "deprovisioned":
		return "deprovisioned"
	case ad.provisioned(now):
		return "provisioned"
	}
	return "provisioning"
}

// createAddon is POST /apps/{app}/addons.
func (s *Sim) createAddon(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Plan       string `json:"plan"`
		Name       string `json:"name"`
		Attachment *struct {
			Name string `json:"name"`
		} `json:"attachment"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Plan == "" {
		herokuError(w, 422, "invalid_params", "plan is required.")
		return
	}
	if !strings.HasPrefix(body.Plan, "heroku-postgresql:") || s.o.PostgresAdmin == "" {
		herokuError(w, 422, "invalid_params", "Couldn't find either the add-on service or the add-on plan of \""+body.Plan+"\".")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appByLocked(r.PathValue("app"))
	if a == nil {
		herokuError(w, 404, "not_found", "Couldn't find that app.")
		return
	}
	name := body.Name
	if name == "" {
		name = addonName("postgresql")
	}
	if s.addonByLocked(name) != nil {
		herokuError(w, 422, "invalid_params", "Name is already taken")
		return
	}
	now := s.now()
	ad := &addon{id: newID(), name: name, plan: body.Plan, app: a, created: now, keep: planRetention(body.Plan),
		state: "provisioning", readyAt: time.Now().Add(s.o.ProvisionDelay), stuck: s.faults.takeStuckProvision()}
	s.addons[ad.id] = ad
	att := "HEROKU_POSTGRESQL_" + colors[int(randomBytes(1)[0])%len(colors)]
	if body.Attachment != nil && body.Attachment.Name != "" {
		att = body.Attachment.Name
	}
	s.attachLocked(ad, a, att, nil)
	ad.varName = strings.TrimSuffix(strings.ToUpper(att), "_URL") + "_URL"
	s.wg.Add(1)
	go s.provision(ad)
	writeJSON(w, http.StatusAccepted, s.addonJSONLocked(ad))
}

// provision creates the add-on's database; an add-on deleted meanwhile gets it dropped at once.
func (s *Sim) provision(ad *addon) {
	defer s.wg.Done()
	db := "addon_" + strings.ReplaceAll(ad.id, "-", "")[:16]
	err := s.psql("CREATE DATABASE " + db)
	s.mu.Lock()
	if err != nil {
		ad.provisionErr = err
		ad.stuck = true // stays provisioning: what a client sees of a provisioning that never ends
		s.mu.Unlock()
		return
	}
	ad.db = db
	ad.dsn = s.dsnOf(db)
	gone := ad.state == "deprovisioned"
	s.mu.Unlock()
	if gone {
		s.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
	}
}

// psql runs one statement on the admin database, bounded.
func (s *Sim) psql(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.o.Psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", s.o.PostgresAdmin, "-c", stmt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("herokusim: psql %q: %v: %s", stmt, err, out)
	}
	return nil
}

// dsnOf is the admin URL with the database db in place of the admin database.
func (s *Sim) dsnOf(db string) string {
	u, err := url.Parse(s.o.PostgresAdmin)
	if err != nil {
		return ""
	}
	u.Path = "/" + db
	return u.String()
}

// deleteAddon is DELETE /apps/{app}/addons/{id}.
func (s *Sim) deleteAddon(w http.ResponseWriter, r *http.Request) {
	if status, ok := s.faults.takeDeleteFailure(); ok {
		id, msg := injected(status)
		herokuError(w, status, id, msg)
		return
	}
	s.mu.Lock()
	a := s.appByLocked(r.PathValue("app"))
	ad := s.addonByLocked(r.PathValue("id"))
	if a == nil || ad == nil || ad.app != a {
		s.mu.Unlock()
		herokuError(w, 404, "not_found", "Couldn't find that add on.")
		return
	}
	ad.state = "deprovisioned"
	delete(s.addons, ad.id)
	kept := s.atts[:0]
	for _, at := range s.atts {
		if at.addon != ad {
			kept = append(kept, at)
		}
	}
	s.atts = kept
	db := ad.db
	body := s.addonJSONLocked(ad)
	s.mu.Unlock()
	if db != "" {
		if err := s.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); err != nil {
			herokuError(w, 500, "internal_server_error", "An internal server error occurred.")
			return
		}
	}
	writeJSON(w, 200, body)
}

// AddonState describes one add-on for tests.
type AddonState struct {
	ID, Name, Plan, State string
	Database              string // the backing database's name ("" for none)
	Created               time.Time
}

// Addons lists the add-ons billed to app, for tests.
func (s *Sim) Addons(appName string) []AddonState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AddonState
	for _, ad := range s.addons {
		if ad.app.name == appName {
			out = append(out, AddonState{ID: ad.id, Name: ad.name, Plan: ad.plan, State: ad.stateAt(time.Now()), Database: ad.db, Created: ad.created})
		}
	}
	return out
}

// SetAddonCreated backdates an add-on, as one an earlier run left behind.
func (s *Sim) SetAddonCreated(idOrName string, created time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ad := s.addonByLocked(idOrName); ad != nil {
		ad.created = created.UTC()
	}
}

func findPsql(pgDump string) string {
	if dir := filepath.Dir(pgDump); dir != "." {
		return filepath.Join(dir, "psql")
	}
	return "psql"
}
