package forksource

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/throwaway"
)

// fakeAPI is a Platform API whose fork answers createErr, and whose add-on stays in state.
type fakeAPI struct {
	mu        sync.Mutex
	plan      string
	createErr error
	state     string
	list      []heroku.Addon
	created   []string
	deleted   []string
}

func (f *fakeAPI) Resolve(_ context.Context, app, database string) (heroku.Database, error) {
	return heroku.Database{App: app, Attachment: strings.TrimSuffix(database, "_URL"), AddonName: "postgresql-solid-1", BillingApp: app, Plan: f.plan}, nil
}

func (f *fakeAPI) ForkAddon(_ context.Context, app, plan, name string, db heroku.Database) (heroku.Addon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, name)
	return heroku.Addon{Name: name, App: app, Plan: plan, State: f.state}, f.createErr
}

func (f *fakeAPI) Addon(_ context.Context, app, id string) (heroku.Addon, error) {
	return heroku.Addon{Name: id, App: app, State: f.state}, nil
}

func (f *fakeAPI) Addons(context.Context, string) ([]heroku.Addon, error) { return f.list, nil }

func (f *fakeAPI) DeleteAddon(ctx context.Context, app, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeAPI) AddonURL(context.Context, string, heroku.Addon) (heroku.Secret, error) {
	return "", errors.New("no URL in this fake")
}

func open(t *testing.T, api *fakeAPI, ctx context.Context, timing throwaway.Timing) (error, string) {
	t.Helper()
	var log bytes.Buffer
	ctx = zerolog.New(&log).WithContext(ctx)
	s := &Source{API: api, App: "pgoffsite-ops", Timing: timing, Redactor: &logging.Redactor{}}
	_, err := s.Open(ctx, archive.Target{App: "shop", Database: "DATABASE_URL"})
	if err == nil {
		t.Fatal("Open succeeded against a fake without a database")
	}
	return err, log.String()
}

// A fork whose POST answer was lost is deleted by name all the same, and the error names it.
func TestForkDeletedWhenCreateFails(t *testing.T) {
	api := &fakeAPI{plan: "heroku-postgresql:standard-0", createErr: errors.New("connection reset")}
	err, log := open(t, api, context.Background(), throwaway.Timing{})
	if len(api.created) != 1 || len(api.deleted) != 1 || api.deleted[0] != api.created[0] || !strings.HasPrefix(api.created[0], Prefix) {
		t.Fatalf("created %v, deleted %v", api.created, api.deleted)
	}
	if !strings.Contains(err.Error(), "fork "+api.created[0]+" of shop::DATABASE_URL: connection reset") || !strings.Contains(log, "fork deleted") {
		t.Errorf("error %v; log %s", err, log)
	}
}

// A fork Heroku never finishes fails after the provisioning bound, and is deleted; so is one
// whose run ends (SIGTERM) while it waits, on a context of its own.
func TestForkDeletedWhenNeverProvisioned(t *testing.T) {
	api := &fakeAPI{plan: "heroku-postgresql:standard-0", state: heroku.AddonProvisioning}
	fast := throwaway.Timing{Provision: 300 * time.Millisecond, PollBase: 10 * time.Millisecond, PollMax: 50 * time.Millisecond}
	err, _ := open(t, api, context.Background(), fast)
	if len(api.deleted) != 1 || !strings.Contains(err.Error(), `is still "provisioning" after 300ms`) {
		t.Errorf("deleted %v; error %v", api.deleted, err)
	}

	api = &fakeAPI{plan: "heroku-postgresql:standard-0", state: heroku.AddonProvisioning}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err, _ = open(t, api, ctx, throwaway.Timing{PollBase: 10 * time.Millisecond, PollMax: 50 * time.Millisecond})
	if len(api.deleted) != 1 || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
		t.Errorf("after the run ended: deleted %v; error %v", api.deleted, err)
	}
}

// An Essential database, or FORK_PLAN on that tier, is refused before anything is created.
func TestForkRefusedOnEssential(t *testing.T) {
	api := &fakeAPI{plan: "heroku-postgresql:essential-1"}
	err, _ := open(t, api, context.Background(), throwaway.Timing{})
	if len(api.created) != 0 || !strings.Contains(err.Error(), "BACKUP_METHOD=pg_dump") || !strings.Contains(err.Error(), "nothing was provisioned") {
		t.Errorf("created %v; error %v", api.created, err)
	}
	if err := Refusal(heroku.Database{Plan: "heroku-postgresql:standard-0"}, "heroku-postgresql:essential-0"); err == nil || !strings.Contains(err.Error(), "FORK_PLAN") {
		t.Errorf("FORK_PLAN essential-0: %v", err)
	}
}

// The cost line: pro rata of the plan's list price, or its price unknown.
func TestCost(t *testing.T) {
	if c, note := Cost("heroku-postgresql:standard-0", 72*time.Hour); c < 4.999 || c > 5.001 || !strings.Contains(note, "$5.0000 at list price") {
		t.Errorf("72 h of standard-0: %v %q", c, note)
	}
	if c, note := Cost("heroku-postgresql:private-7", time.Hour); c != 0 || !strings.Contains(note, "unknown") {
		t.Errorf("an unknown plan: %v %q", c, note)
	}
}
