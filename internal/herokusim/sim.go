// Package herokusim simulates the parts of Heroku that pgoffsite talks to — the Platform API, the
// Data API and the S3 storage behind backups' signed URLs — following ../shared/heroku-api.md to
// the letter. A capture runs a real pg_dump against a real PostgreSQL database, so the archives
// tests see are real dumps. Fault knobs reproduce what Heroku and S3 do on a bad day.
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
	Token        string        // the valid API key (Bearer, or Basic with an empty user)
	PgDump       string        // pg_dump to run; default: PATH, else the newest /usr/lib/postgresql/*/bin/pg_dump
	DumpDir      string        // where backups are kept; default: a temporary directory removed by Close
	URLTTL       time.Duration // signed URL lifetime; default one hour, like Heroku's
	CaptureDelay time.Duration // how long a capture stays running at least; default 1.5 s, so a running state is observable
	Now          func() time.Time
}

// Request is one request the simulator received.
type Request struct {
	API    string // platform, data or storage
	Method string
	Path   string
	Header http.Header
}

type app struct {
	id, name string
	created  time.Time
}

type addon struct {
	id, name, plan, dsn string
	app                 *app // the billing app
	created             time.Time
}

type attachment struct {
	id, name  string
	namespace *string
	app       *app
	addon     *addon
}

// Sim is a simulated Heroku account.
type Sim struct {
	o          Options
	tmpDir     string
	secret     []byte
	mu         sync.Mutex
	apps       map[string]*app
	addons     map[string]*addon
	atts       []*attachment
	transfers  map[string][]*transfer // by billing app
	nums       map[string]int
	storageURL string
	requests   []Request
	faults     *Faults
	wg         sync.WaitGroup
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
	s := &Sim{o: o, secret: randomBytes(32), apps: map[string]*app{}, addons: map[string]*addon{},
		transfers: map[string][]*transfer{}, nums: map[string]int{}, faults: &Faults{}}
	if s.o.DumpDir == "" {
		s.tmpDir, _ = os.MkdirTemp("", "herokusim-")
		s.o.DumpDir = s.tmpDir
	}
	return s
}

func findPgDump() string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	sort.Strings(dirs)
	if len(dirs) > 0 {
		return dirs[len(dirs)-1]
	}
	return "pg_dump"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var adjectives = []string{"globular", "amorphous", "rigid", "cubic", "shallow", "tapered", "fluffy", "vertical", "curved", "solid"}

// Close waits for running captures and removes the temporary dump directory.
func (s *Sim) Close() {
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
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
}

// AddApp creates an app.
func (s *Sim) AddApp(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[name] == nil {
		s.apps[name] = &app{id: newID(), name: name, created: s.o.Now().UTC()}
	}
}

func (s *Sim) appLocked(name string) *app {
	if s.apps[name] == nil {
		s.apps[name] = &app{id: newID(), name: name, created: s.o.Now().UTC()}
	}
	return s.apps[name]
}

// AddDatabase provisions a heroku-postgresql add-on billed to billingApp, attached there as
// attachment (config var <attachment>_URL = dsn), and returns its id.
func (s *Sim) AddDatabase(billingApp, attachment, plan, dsn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appLocked(billingApp)
	n := randomBytes(3)
	ad := &addon{id: newID(), plan: plan, dsn: dsn, app: a, created: s.o.Now().UTC(),
		name: fmt.Sprintf("postgresql-%s-%05d", adjectives[int(n[0])%len(adjectives)], (int(n[1])<<8|int(n[2]))%100000)}
	s.addons[ad.id] = ad
	s.attachLocked(ad, a, attachment, nil)
	return ad.id
}

// AddAddon provisions a non-Postgres add-on (e.g. heroku-redis:mini), for filtering tests.
func (s *Sim) AddAddon(appName, attachment, plan string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appLocked(appName)
	ad := &addon{id: newID(), plan: plan, dsn: "redis://h:p@127.0.0.1:6379", app: a, created: s.o.Now().UTC(),
		name: strings.SplitN(plan, ":", 2)[0] + "-" + hex.EncodeToString(randomBytes(3))}
	s.addons[ad.id] = ad
	s.attachLocked(ad, a, attachment, nil)
}

// Attach attaches an existing add-on to another app (the add-on stays billed to its own app).
func (s *Sim) Attach(addonID, appName, attachment string, namespace *string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attachLocked(s.addons[addonID], s.appLocked(appName), attachment, namespace)
}

func (s *Sim) attachLocked(ad *addon, a *app, name string, ns *string) {
	s.atts = append(s.atts, &attachment{id: newID(), name: strings.ToUpper(name), namespace: ns, app: a, addon: ad})
}

// SetStorageURL sets the base URL signed URLs point at (where Storage() is served, or a proxy).
func (s *Sim) SetStorageURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storageURL = strings.TrimRight(base, "/")
}

// Requests returns every request received so far.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Faults returns the fault knobs.
func (s *Sim) Faults() *Faults { return s.faults }

// Backup returns the file of a finished backup of app (its billing app) by number.
func (s *Sim) Backup(appName string, num int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.transfers[appName] {
		if t.num == num && t.finished() && t.succeeded != nil && *t.succeeded {
			return t.path, true
		}
	}
	return "", false
}

// AddBackup registers an existing dump file as a finished backup of the add-on (as Heroku's
// schedule would have made it) and returns its number; the file is served as is.
func (s *Sim) AddBackup(appName, addonID, path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		panic(fmt.Sprintf("herokusim: AddBackup: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ad := s.addons[addonID]
	t := s.newTransferLocked(ad)
	now := s.o.Now().UTC()
	ok := true
	size := fi.Size()
	t.started, t.updated, t.finished_, t.succeeded, t.processed, t.source, t.path = now, now, now, &ok, size, &size, path
	return t.num
}

// Serve serves the three APIs on httptest servers for the duration of the test and returns the
// Platform and Data API base URLs.
func Serve(t testing.TB, s *Sim) (platformURL, dataURL string) {
	p := httptest.NewServer(s.Platform())
	d := httptest.NewServer(s.Data())
	st := httptest.NewServer(s.Storage())
	s.SetStorageURL(st.URL)
	t.Cleanup(func() {
		p.Close()
		d.Close()
		st.Close()
		s.Close()
	})
	return p.URL, d.URL
}
