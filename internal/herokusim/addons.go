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
//
// Forks: config {"fork": "APP::ATTACHMENT_URL"} (what `heroku addons:create heroku-postgresql:PLAN
// -- --fork APP::DATABASE_URL` sends) names the database to copy. The fork provisions as any
// add-on, its database filled with the source's data by pg_dump | pg_restore between the
// server's databases (CREATE DATABASE ... TEMPLATE would fail whenever the source has a session
// open, which a live database always has). A fork of, or onto, an Essential-tier plan is refused
// with 422, as Heroku has no forks there (the exact message Heroku writes is unverified); so is a
// fork of a database that cannot be found. CreatedAddons counts what was ever created, Addons
// what is left.

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
		Config map[string]any `json:"config"`
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
	var source *addon
	if v, ok := body.Config["fork"]; ok {
		if source = s.forkSourceLocked(a, fmt.Sprint(v)); source == nil {
			herokuError(w, 422, "invalid_params", fmt.Sprintf("Could not find a database for --fork %v.", v))
			return
		}
		if forkless(source.plan) || forkless(body.Plan) {
			herokuError(w, 422, "invalid_params", "Forking is not supported on Essential-tier databases: use a Standard, Premium, Private or Shield plan.")
			return
		}
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
	if source != nil {
		ad.forkOf, ad.forkDSN = source.name, source.dsn
	}
	s.addons[ad.id] = ad
	s.created++
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
	if err == nil && ad.forkDSN != "" {
		err = s.copyDatabase(ad.forkDSN, s.dsnOf(db))
	}
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

// forkSourceLocked finds the database "APP::ATTACHMENT[_URL]" names, attached to that app (or to
// from, without APP::); nil when there is none or it has no real database to copy. s.mu is held.
func (s *Sim) forkSourceLocked(from *app, arg string) *addon {
	on := from
	if appName, att, ok := strings.Cut(arg, "::"); ok {
		if on = s.appByLocked(appName); on == nil {
			return nil
		}
		arg = att
	}
	name := strings.TrimSuffix(strings.ToUpper(arg), "_URL")
	for _, at := range s.atts {
		if at.app == on && strings.ToUpper(at.name) == name && at.addon.postgres() && at.addon.dsn != "" {
			return at.addon
		}
	}
	return nil
}

// forkless tells the plans Heroku cannot fork: the Essential tier (and the retired hobby plans).
func forkless(plan string) bool {
	short := strings.TrimPrefix(plan, "heroku-postgresql:")
	return strings.HasPrefix(short, "essential-") || strings.HasPrefix(short, "hobby-") || short == "mini" || short == "basic"
}

// copyDatabase fills the database at to with from's schema and data: pg_dump | pg_restore,
// bounded. Run while the add-on is provisioning, as Heroku copies a fork's data before it is
// available.
func (s *Sim) copyDatabase(from, to string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dump := exec.CommandContext(ctx, s.o.PgDump, "--format=custom", "--no-owner", "--no-acl", "--dbname", from)
	restore := exec.CommandContext(ctx, beside(s.o.PgDump, "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "--dbname", to)
	pipe, err := dump.StdoutPipe()
	if err != nil {
		return err
	}
	restore.Stdin = pipe
	var dumpErr, restoreErr strings.Builder
	dump.Stderr, restore.Stderr = &dumpErr, &restoreErr
	if err := dump.Start(); err != nil {
		return fmt.Errorf("herokusim: fork: pg_dump: %v", err)
	}
	rerr := restore.Run()
	derr := dump.Wait()
	if derr != nil || rerr != nil {
		return fmt.Errorf("herokusim: fork: pg_dump: %v %s; pg_restore: %v %s", derr, dumpErr.String(), rerr, restoreErr.String())
	}
	return nil
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
	ForkOf                string // the add-on a fork copied ("" for none)
	Created               time.Time
}

// Addons lists the add-ons billed to app, for tests.
func (s *Sim) Addons(appName string) []AddonState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AddonState
	for _, ad := range s.addons {
		if ad.app.name == appName {
			out = append(out, AddonState{ID: ad.id, Name: ad.name, Plan: ad.plan, State: ad.stateAt(time.Now()), Database: ad.db, ForkOf: ad.forkOf, Created: ad.created})
		}
	}
	return out
}

// CreatedAddons counts the add-ons ever created through the API (forks among them), deleted or not.
func (s *Sim) CreatedAddons() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// SetAddonCreated backdates an add-on, as one an earlier run left behind.
func (s *Sim) SetAddonCreated(idOrName string, created time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ad := s.addonByLocked(idOrName); ad != nil {
		ad.created = created.UTC()
	}
}

// beside is the PostgreSQL client tool beside pg_dump, or on PATH when pg_dump is.
func beside(pgDump, tool string) string {
	if dir := filepath.Dir(pgDump); dir != "." {
		return filepath.Join(dir, tool)
	}
	return tool
}
