// Package herokusim simulates the parts of Heroku that pgoffsite talks to — the Platform API, the
// Data API and the S3 storage behind backups' signed URLs — following shared/heroku-api.md to the
// letter: status codes, time formats, explicit nulls, non-JSON 404 bodies, the billing-app rule,
// one-hour signed URLs that refuse HEAD. Heroku Postgres add-ons created through the Platform API
// (POST /apps/{app}/addons, for restore drills) are provisioned as fresh real databases; the
// endpoints and their shapes are listed in addons.go. Apps have a runtime for bundles and
// restore-app — slugs whose blobs are real tarballs it serves and accepts, releases, config vars,
// formation, buildpacks, domains, app creation — listed in slugs.go. A capture runs a real pg_dump against a real PostgreSQL
// database, so the archives tests see are real dumps. Fault knobs (Faults) reproduce what Heroku
// and S3 do on a bad day. Serve puts the three APIs on plain-HTTP test servers; ServeTLS puts them
// on one HTTPS origin with a CA of its own, which is what the real Heroku CLI needs.
//
// Its wire format is its own, written from the spec, not shared with internal/heroku: a client
// bug cannot hide behind a simulator that makes the same mistake.
package herokusim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Sim.
type Options struct {
	Token        string        // the valid API key (Bearer, or Basic with an empty user and the key as password)
	PgDump       string        // pg_dump to run; default: PATH, else the newest /usr/lib/postgresql/*/bin/pg_dump
	DumpDir      string        // where backups are kept; default: a temporary directory removed by Close
	URLTTL       time.Duration // signed URL lifetime; default one hour, like Heroku's
	CaptureDelay time.Duration // how long a capture stays running at least; default 1.5 s, so a running state is observable
	Now          func() time.Time
	// PostgresAdmin is a database URL on a server where the simulator may CREATE DATABASE: each
	// heroku-postgresql add-on provisioned through the API gets a fresh database there, dropped
	// when the add-on is deleted. "" refuses such provisioning.
	PostgresAdmin string
	// Psql runs those statements; default: psql beside PgDump.
	Psql string
	// ProvisionDelay is how long a provisioned add-on stays "provisioning" at least; default 1 s.
	ProvisionDelay time.Duration
}

// Request is one request the simulator received. The query string is not kept: on the storage
// side it is the signed URL's secret.
type Request struct {
	API    string // "platform", "data" or "storage"
	Method string
	Path   string
	Header http.Header
	At     time.Time // when it arrived (Options.Now)
}

type app struct {
	id, name string
	created  time.Time
}

type addon struct {
	id, name, plan, dsn string
	app                 *app // the billing app
	created             time.Time
	keep                retention
	// Provisioned through the API (drills); "" state is an add-on made by AddDatabase.
	state        string
	readyAt      time.Time
	stuck        bool
	db           string
	varName      string // its config var, e.g. HEROKU_POSTGRESQL_PINK_URL
	provisionErr error
	forkOf       string // a fork's: the name of the add-on it copies
	forkDSN      string // and that add-on's database, copied while provisioning
}

func (ad *addon) postgres() bool { return strings.HasPrefix(ad.plan, "heroku-postgresql:") }

type attachment struct {
	id, name  string
	namespace *string
	app       *app
	addon     *addon
	created   time.Time
}

// Sim is a simulated Heroku account. Its methods are safe for concurrent use.
type Sim struct {
	o          Options
	tmpDir     string
	secret     []byte // signs storage URLs
	mu         sync.Mutex
	apps       map[string]*app
	releases   map[*app]*appRuntime // slugs, releases, config vars, formation (slugs.go)
	pageLimit  int                  // the most items of a list page (ranges.go); 0: max's
	addons     map[string]*addon
	created    int // add-ons created through the API
	atts       []*attachment
	transfers  map[string][]*transfer // by billing app name
	nums       map[string]int         // last transfer number by billing app name
	schedules  map[string][]*schedule // by add-on id
	fetch      *http.Client           // what restores download other URLs with
	storageURL string
	requests   []Request
	rateLeft   int       // Platform API rate-limit tokens
	rateAt     time.Time // when rateLeft was last refilled
	faults     *Faults
	dy         *dynos // one-off dynos and log sessions (dynos.go)
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// New returns an empty simulated account; add apps and databases before use.
func New(o Options) *Sim {
	if o.URLTTL <= 0 {
		o.URLTTL = time.Hour
	}
	if o.CaptureDelay <= 0 {
		o.CaptureDelay = 1500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PgDump == "" {
		o.PgDump = findPgDump()
	}
	if o.Psql == "" {
		o.Psql = beside(o.PgDump, "psql")
	}
	if o.ProvisionDelay <= 0 {
		o.ProvisionDelay = time.Second
	}
	s := &Sim{o: o, secret: randomBytes(32), apps: map[string]*app{}, addons: map[string]*addon{},
		transfers: map[string][]*transfer{}, nums: map[string]int{}, schedules: map[string][]*schedule{},
		rateLeft: rateBudget, faults: &Faults{}, storageURL: "http://storage.invalid",
		// A restore's download has a deadline that fits a test's dump, and a way out when the
		// server stops answering.
		fetch: &http.Client{Timeout: 10 * time.Minute}}
	if s.o.DumpDir == "" {
		dir, err := os.MkdirTemp("", "herokusim-")
		if err != nil {
			panic(fmt.Sprintf("herokusim: dump directory: %v", err))
		}
		s.tmpDir, s.o.DumpDir = dir, dir
	}
	return s
}

func findPgDump() string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	sort.Strings(found)
	if len(found) > 0 {
		return found[len(found)-1]
	}
	return "pg_dump"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("herokusim: random: %v", err))
	}
	return b
}

// newID returns a random (version 4) UUID, as Heroku's ids are.
func newID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var adjectives = []string{"globular", "amorphous", "rigid", "cubic", "shallow", "tapered", "fluffy", "vertical", "curved", "solid"}

// addonName names an add-on the way Heroku does: postgresql-globular-83867.
func addonName(service string) string {
	n := randomBytes(3)
	return fmt.Sprintf("%s-%s-%05d", service, adjectives[int(n[0])%len(adjectives)], (int(n[1])<<8|int(n[2]))%100000)
}

func (s *Sim) now() time.Time { return s.o.Now().UTC() }

// Close cancels running captures, waits for them and removes the temporary dump directory.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		for _, ts := range s.transfers {
			for _, t := range ts {
				if t.cancel != nil {
					t.cancel()
				}
			}
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.closeDynos()
		// Databases of add-ons provisioned through the API and never deleted go with the account.
		s.mu.Lock()
		var dbs []string
		for _, ad := range s.addons {
			if ad.db != "" {
				dbs = append(dbs, ad.db)
			}
		}
		s.mu.Unlock()
		for _, db := range dbs {
			s.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
		}
		if s.tmpDir != "" {
			os.RemoveAll(s.tmpDir)
		}
	})
}

// AddApp creates an app (with a uuid id) unless it exists.
func (s *Sim) AddApp(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appLocked(name)
}

func (s *Sim) appLocked(name string) *app {
	if s.apps[name] == nil {
		s.apps[name] = &app{id: newID(), name: name, created: s.now()}
	}
	return s.apps[name]
}

// appByLocked finds an app by name or id, as the Platform API accepts either.
func (s *Sim) appByLocked(nameOrID string) *app {
	if a := s.apps[nameOrID]; a != nil {
		return a
	}
	for _, a := range s.apps {
		if a.id == nameOrID {
			return a
		}
	}
	return nil
}

// AddDatabase provisions a heroku-postgresql add-on (plan e.g. "heroku-postgresql:standard-0")
// billed to billingApp, attached there as attachment (config var <attachment>_URL = dsn), and
// returns its id. Captures of it run pg_dump against dsn.
func (s *Sim) AddDatabase(billingApp, attachment, plan, dsn string) (addonID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appLocked(billingApp)
	ad := &addon{id: newID(), name: addonName("postgresql"), plan: plan, dsn: dsn, app: a, created: s.now(), keep: planRetention(plan)}
	s.addons[ad.id] = ad
	s.attachLocked(ad, a, attachment, nil)
	return ad.id
}

// AddAddon provisions a non-Postgres add-on (plan e.g. "heroku-redis:mini") attached to app as
// attachment, for tests that a client keeps Postgres add-ons only. It returns the add-on's id.
func (s *Sim) AddAddon(appName, attachment, plan string) (addonID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appLocked(appName)
	service, _, _ := strings.Cut(plan, ":")
	service = strings.TrimPrefix(service, "heroku-")
	ad := &addon{id: newID(), name: addonName(service), plan: plan, dsn: "redis://h:secret@127.0.0.1:6379", app: a, created: s.now()}
	s.addons[ad.id] = ad
	s.attachLocked(ad, a, attachment, nil)
	return ad.id
}

// Attach attaches an existing add-on to another app (or again to the same one) as attachment,
// with an optional namespace (e.g. "credential:analyst"); the add-on stays billed to its app.
func (s *Sim) Attach(addonID, appName, attachment string, namespace *string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ad := s.addons[addonID]
	if ad == nil {
		panic("herokusim: Attach: no add-on " + addonID)
	}
	s.attachLocked(ad, s.appLocked(appName), attachment, namespace)
}

func (s *Sim) attachLocked(ad *addon, a *app, name string, ns *string) {
	name = strings.TrimSuffix(strings.ToUpper(name), "_URL")
	s.atts = append(s.atts, &attachment{id: newID(), name: name, namespace: ns, app: a, addon: ad, created: s.now()})
}

// SetStorageURL sets the base URL that signed URLs point at: where Storage() is served, or a
// proxy in front of it.
func (s *Sim) SetStorageURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storageURL = strings.TrimRight(base, "/")
}

// Requests returns every request received so far, oldest first.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Sim) record(api string, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{API: api, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), At: s.now()})
}

// Faults returns the fault knobs.
func (s *Sim) Faults() *Faults { return s.faults }

// Backup returns the dump file of a finished, successful backup of app (the add-on's billing
// app) by number, for tests that compare archives byte for byte.
func (s *Sim) Backup(appName string, num int) (path string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.transfers[appName] {
		if t.num == num && t.ok() {
			return t.path, true
		}
	}
	return "", false
}

// AddBackup registers an existing dump file as a finished, successful manual backup of the
// add-on, under its billing app (appName), and returns its number. The file is served as is and
// left in place by Close.
func (s *Sim) AddBackup(appName, addonID, path string) (num int) {
	fi, err := os.Stat(path)
	if err != nil {
		panic(fmt.Sprintf("herokusim: AddBackup: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ad := s.addons[addonID]
	if ad == nil || ad.app.name != appName {
		panic(fmt.Sprintf("herokusim: AddBackup: no add-on %s billed to %s", addonID, appName))
	}
	t := s.newTransferLocked(ad)
	now := s.now()
	ok := true
	size := fi.Size()
	t.started, t.updated, t.finishedAt, t.succeeded, t.processed, t.source, t.path = now, now, now, &ok, size, &size, path
	return t.num
}

// Serve serves the three APIs on httptest servers until the test ends (then closes them and the
// Sim), points signed URLs at the storage server, and returns the Platform and Data API base URLs.
func Serve(t testing.TB, s *Sim) (platformURL, dataURL string) {
	p := httptest.NewServer(s.Platform())
	d := httptest.NewServer(s.Data())
	st := httptest.NewServer(s.Storage())
	s.SetStorageURL(st.URL)
	t.Cleanup(func() {
		// A download still running when the test ends (a stalled proxy, say) must not hold it up.
		for _, srv := range []*httptest.Server{p, d, st} {
			srv.CloseClientConnections()
			srv.Close()
		}
		s.Close()
	})
	return p.URL, d.URL
}
