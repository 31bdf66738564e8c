package drill

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// fakeAPI provisions at the first poll, answers as told and records the deletions.
type fakeAPI struct {
	createErr error
	list      []heroku.Addon
	listErr   error
	deleteErr error
	deleted   []string
}

func (f *fakeAPI) CreateAddon(ctx context.Context, app, plan, name string) (heroku.Addon, error) {
	return heroku.Addon{Name: name, State: heroku.AddonProvisioning}, f.createErr
}
func (f *fakeAPI) Addon(ctx context.Context, app, id string) (heroku.Addon, error) {
	return heroku.Addon{Name: id, State: heroku.AddonProvisioned, ConfigVars: []string{"HEROKU_POSTGRESQL_RED_URL"}}, nil
}
func (f *fakeAPI) Addons(ctx context.Context, app string) ([]heroku.Addon, error) {
	return f.list, f.listErr
}
func (f *fakeAPI) DeleteAddon(ctx context.Context, app, id string) error {
	f.deleted = append(f.deleted, id)
	return f.deleteErr
}
func (f *fakeAPI) AddonURL(ctx context.Context, app string, a heroku.Addon) (heroku.Secret, error) {
	return heroku.Secret(drillURL), nil
}

const drillURL = "postgres://drilluser:s3cretDrillPassword@db.example:5432/d1"

// fakeDatabase restores as told and answers the checks from a table.
type fakeDatabase struct {
	restoreErr error
	answers    map[string]bool
	restoredTo string
}

func (f *fakeDatabase) Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result {
	f.restoredTo = o.RestoreTo
	return verify.Result{Tables: 2, Rows: 1500, Restored: f.restoreErr == nil, Err: f.restoreErr}
}
func (f *fakeDatabase) Check(ctx context.Context, url, statement string) (bool, error) {
	ok, known := f.answers[statement]
	if !known {
		return false, errors.New("psql: ERROR: relation does not exist at " + url)
	}
	return ok, nil
}

func newFake(t *testing.T, api API, db Database, out *bytes.Buffer, o Options) *driller {
	st, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := heroku.FindPostgresPlan("essential-0")
	o.App, o.Plan, o.Timeout = "ops-app", plan, time.Hour
	o.Timing = Timing{PollBase: time.Millisecond, PollMax: time.Millisecond}
	red := &logging.Redactor{}
	return &driller{Deps: Deps{API: api, Database: db, Source: st, Redactor: red, Log: logging.New(out, "logfmt", "info", red),
		Record: func(context.Context, string, verify.Result, *catalog.Drill) {}}, o: o}
}

var shop = archive.Target{App: "shop", Database: "DATABASE_URL"}

// A drill that passes: provisioned, restored into the add-on's URL, every check true, the
// add-on deleted and its time and cost recorded; the URL's password never in the log.
func TestDrillPasses(t *testing.T) {
	api, db := &fakeAPI{}, &fakeDatabase{answers: map[string]bool{"select true": true}}
	var out bytes.Buffer
	d := newFake(t, api, db, &out, Options{Checks: []string{"select true"}})
	v, rec := d.drill(context.Background(), shop, "shop/x.dump")
	if v.Err != nil || db.restoredTo != drillURL || !rec.Deleted || len(rec.Checks) != 1 || !rec.Checks[0].Passed {
		t.Fatalf("err %v, restored to %q, record %+v", v.Err, db.restoredTo, rec)
	}
	if len(api.deleted) != 1 || api.deleted[0] != rec.Addon || rec.HeldSeconds <= 0 || rec.CostUSD <= 0 {
		t.Errorf("deleted %v, held %v s for $%v", api.deleted, rec.HeldSeconds, rec.CostUSD)
	}
	if strings.Contains(out.String(), "s3cretDrillPassword") {
		t.Errorf("the add-on's password is in the log:\n%s", out.String())
	}
}

// A false check and a failing one fail the drill, each named with its statement; the failing
// one's error is scrubbed of the add-on's URL; the add-on is deleted all the same.
func TestDrillChecksFail(t *testing.T) {
	api, db := &fakeAPI{}, &fakeDatabase{answers: map[string]bool{"select false": false}}
	var out bytes.Buffer
	d := newFake(t, api, db, &out, Options{Checks: []string{"select false", "select x from nowhere"}})
	v, rec := d.drill(context.Background(), shop, "shop/x.dump")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "DRILL_CHECKS statement 1 (select false) is false") ||
		!strings.Contains(v.Err.Error(), "DRILL_CHECKS statement 2 (select x from nowhere) failed") {
		t.Fatalf("err %v", v.Err)
	}
	if strings.Contains(v.Err.Error(), "s3cretDrillPassword") || strings.Contains(rec.Checks[1].Error, "s3cretDrillPassword") {
		t.Errorf("the add-on's password in the error: %v", v.Err)
	}
	if len(api.deleted) != 1 {
		t.Errorf("deleted %v", api.deleted)
	}
}

// With Keep the add-on stays, the log says how to remove it, and its cost so far is recorded.
func TestDrillKeep(t *testing.T) {
	api, db := &fakeAPI{}, &fakeDatabase{}
	var out bytes.Buffer
	d := newFake(t, api, db, &out, Options{Keep: true})
	v, rec := d.drill(context.Background(), shop, "shop/x.dump")
	if v.Err != nil || len(api.deleted) != 0 || rec.Deleted || rec.CostUSD <= 0 {
		t.Fatalf("err %v, deleted %v, record %+v", v.Err, api.deleted, rec)
	}
	if !strings.Contains(out.String(), "remove_with=\"heroku addons:destroy "+rec.Addon+" -a ops-app --confirm ops-app\"") {
		t.Errorf("no way to remove it:\n%s", out.String())
	}
}

// A DELETE that fails fails the drill with the command that removes the add-on.
func TestDrillDeleteFailsNamesTheCommand(t *testing.T) {
	api, db := &fakeAPI{deleteErr: errors.New("heroku: 403 forbidden")}, &fakeDatabase{}
	var out bytes.Buffer
	v, rec := newFake(t, api, db, &out, Options{}).drill(context.Background(), shop, "shop/x.dump")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "heroku addons:destroy "+rec.Addon) || rec.Deleted {
		t.Fatalf("err %v", v.Err)
	}
}

// A POST whose answer is lost may still have provisioned the add-on: it is deleted by name.
func TestDrillDeletesAfterAFailedCreate(t *testing.T) {
	api := &fakeAPI{createErr: errors.New("heroku: create add-on: connection reset")}
	var out bytes.Buffer
	d := newFake(t, api, &fakeDatabase{}, &out, Options{})
	v, rec := d.drill(context.Background(), shop, "shop/x.dump")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "connection reset") {
		t.Errorf("err %v", v.Err)
	}
	if len(api.deleted) != 1 || api.deleted[0] != rec.Addon || !strings.HasPrefix(rec.Addon, Prefix) {
		t.Errorf("deleted %v, want [%s]", api.deleted, rec.Addon)
	}
}

// Only drill add-ons older than DRILL_TIMEOUT are swept; a listing that fails does not stop the drill.
func TestDrillLeftoverSweep(t *testing.T) {
	now := time.Now()
	api := &fakeAPI{list: []heroku.Addon{
		{ID: "1", Name: "pgoffsite-drill-20261101-020000-aaaa", CreatedAt: now.Add(-30 * 24 * time.Hour)},
		{ID: "2", Name: "pgoffsite-drill-20261201-020000-bbbb", CreatedAt: now.Add(-time.Minute)},
		{ID: "3", Name: "postgresql-globular-83867", CreatedAt: now.Add(-300 * 24 * time.Hour)},
	}}
	var out bytes.Buffer
	newFake(t, api, &fakeDatabase{}, &out, Options{}).removeLeftovers(context.Background())
	if len(api.deleted) != 1 || api.deleted[0] != "1" {
		t.Errorf("deleted %v, want only the old drill add-on", api.deleted)
	}
	if !strings.Contains(out.String(), "addon=pgoffsite-drill-20261101-020000-aaaa") {
		t.Errorf("the removed add-on is not named:\n%s", out.String())
	}
	api = &fakeAPI{listErr: errors.New("heroku: 503")}
	out.Reset()
	newFake(t, api, &fakeDatabase{}, &out, Options{}).removeLeftovers(context.Background())
	if len(api.deleted) != 0 || !strings.Contains(out.String(), "the drill goes on") {
		t.Errorf("a failed listing: %v\n%s", api.deleted, out.String())
	}
}

// The run's total: the cost of every add-on held, and ErrFailed when a drill failed.
func TestDrillSummary(t *testing.T) {
	var out bytes.Buffer
	d := newFake(t, &fakeAPI{}, &fakeDatabase{}, &out, Options{Targets: []archive.Target{shop, shop}})
	drills := []*catalog.Drill{{CostUSD: 0.001, HeldSeconds: 60}, {CostUSD: 0.002, HeldSeconds: 120}}
	err := d.summarize([]archive.Result{{Target: shop}, {Target: shop, Err: errors.New("x")}}, drills, false)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "1 of 2 failed") {
		t.Errorf("err %v", err)
	}
	if !strings.Contains(out.String(), "cost_usd=0.0030") || !strings.Contains(out.String(), "2 drill database(s) held 3m0s in all") {
		t.Errorf("the cost line:\n%s", out.String())
	}
	if err := d.summarize([]archive.Result{{Target: shop}}, nil, false); err != nil {
		t.Errorf("a passed run: %v", err)
	}
	if err := d.summarize(nil, nil, true); !errors.Is(err, ErrFailed) {
		t.Errorf("an interrupted run: %v", err)
	}
}

func TestDrillName(t *testing.T) {
	n := addonName(time.Date(2026, 12, 1, 3, 4, 5, 0, time.UTC))
	if !strings.HasPrefix(n, "pgoffsite-drill-20261201-030405-") || len(n) != len("pgoffsite-drill-20261201-030405-abcd") || strings.ToLower(n) != n {
		t.Errorf("name %q", n)
	}
}
