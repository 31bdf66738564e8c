package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
)

// fakeDrillAPI answers as told and records the deletions.
type fakeDrillAPI struct {
	createErr error
	list      []heroku.Addon
	listErr   error
	deleted   []string
}

func (f *fakeDrillAPI) CreateAddon(ctx context.Context, app, plan, name string) (heroku.Addon, error) {
	return heroku.Addon{Name: name, State: heroku.AddonProvisioning}, f.createErr
}
func (f *fakeDrillAPI) Addon(ctx context.Context, app, id string) (heroku.Addon, error) {
	return heroku.Addon{}, errors.New("not used")
}
func (f *fakeDrillAPI) Addons(ctx context.Context, app string) ([]heroku.Addon, error) {
	return f.list, f.listErr
}
func (f *fakeDrillAPI) DeleteAddon(ctx context.Context, app, id string) error {
	f.deleted = append(f.deleted, id)
	return nil
}
func (f *fakeDrillAPI) AddonURL(ctx context.Context, app string, a heroku.Addon) (heroku.Secret, error) {
	return "", errors.New("not used")
}

func newFakeDriller(t *testing.T, api drillAPI, out *bytes.Buffer) *driller {
	st, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := heroku.FindPostgresPlan("essential-0")
	return &driller{api: api, app: "ops-app", cfg: config.Drill{Plan: plan, Timeout: time.Hour},
		log: logging.New(out, "logfmt", "info", &logging.Redactor{}), red: &logging.Redactor{}, src: &source{Reader: st, caps: st.Caps()}}
}

// A POST whose answer is lost may still have provisioned the add-on: it is deleted by name.
func TestDrillDeletesAfterAFailedCreate(t *testing.T) {
	api := &fakeDrillAPI{createErr: errors.New("heroku: create add-on: connection reset")}
	var out bytes.Buffer
	d := newFakeDriller(t, api, &out)
	v, rec := d.drill(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"}, "shop/x.dump")
	if v.Err == nil || !strings.Contains(v.Err.Error(), "connection reset") {
		t.Errorf("err %v", v.Err)
	}
	if len(api.deleted) != 1 || api.deleted[0] != rec.Addon || !strings.HasPrefix(rec.Addon, drillPrefix) {
		t.Errorf("deleted %v, want [%s]", api.deleted, rec.Addon)
	}
}

// Only drill add-ons older than DRILL_TIMEOUT are swept; a listing that fails does not stop the drill.
func TestDrillLeftoverSweep(t *testing.T) {
	now := time.Now()
	api := &fakeDrillAPI{list: []heroku.Addon{
		{ID: "1", Name: "pgoffsite-drill-20261101-020000-aaaa", CreatedAt: now.Add(-30 * 24 * time.Hour)},
		{ID: "2", Name: "pgoffsite-drill-20261201-020000-bbbb", CreatedAt: now.Add(-time.Minute)},
		{ID: "3", Name: "postgresql-globular-83867", CreatedAt: now.Add(-300 * 24 * time.Hour)},
	}}
	var out bytes.Buffer
	newFakeDriller(t, api, &out).removeLeftovers(context.Background())
	if len(api.deleted) != 1 || api.deleted[0] != "1" {
		t.Errorf("deleted %v, want only the old drill add-on", api.deleted)
	}
	if !strings.Contains(out.String(), "addon=pgoffsite-drill-20261101-020000-aaaa") {
		t.Errorf("the removed add-on is not named:\n%s", out.String())
	}
	api = &fakeDrillAPI{listErr: errors.New("heroku: 503")}
	out.Reset()
	newFakeDriller(t, api, &out).removeLeftovers(context.Background())
	if len(api.deleted) != 0 || !strings.Contains(out.String(), "the drill goes on") {
		t.Errorf("a failed listing: %v\n%s", api.deleted, out.String())
	}
}

func TestDrillName(t *testing.T) {
	n := drillName(time.Date(2026, 12, 1, 3, 4, 5, 0, time.UTC))
	if !strings.HasPrefix(n, "pgoffsite-drill-20261201-030405-") || len(n) != len("pgoffsite-drill-20261201-030405-abcd") || strings.ToLower(n) != n {
		t.Errorf("name %q", n)
	}
}
