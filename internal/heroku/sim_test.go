package heroku

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// simWorld is an account on the simulator backed by a real PostgreSQL:
//
//	shop:  DATABASE (Postgres), HEROKU_POSTGRESQL_BLUE (a second Postgres), REDIS (not Postgres)
//	core:  DATABASE, billed here and attached to web as SHARED_DB (and again under a namespace)
type simWorld struct {
	sim                *herokusim.Sim
	c                  *Client
	shopID, blueID     string
	coreID             string
	platform, dataBase string
}

func newSimWorld(t *testing.T) *simWorld {
	t.Helper()
	pg := testenv.StartPostgres(t)
	mkdb := func(prefix string) string {
		name, dsn := pg.CreateDB(t, prefix)
		pg.Exec(t, name, "CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items SELECT g, 'item '||g FROM generate_series(1, 500) g;")
		return dsn
	}
	sim := herokusim.New(herokusim.Options{Token: key, PgDump: pg.Bin("pg_dump"), CaptureDelay: 200 * time.Millisecond})
	w := &simWorld{sim: sim}
	w.platform, w.dataBase = herokusim.Serve(t, sim)
	w.shopID = sim.AddDatabase("shop", "DATABASE", "heroku-postgresql:standard-0", mkdb("hkshop"))
	w.blueID = sim.AddDatabase("shop", "HEROKU_POSTGRESQL_BLUE", "heroku-postgresql:essential-0", mkdb("hkblue"))
	sim.AddAddon("shop", "REDIS", "heroku-redis:mini")
	w.coreID = sim.AddDatabase("core", "DATABASE", "heroku-postgresql:standard-0", mkdb("hkcore"))
	sim.AddApp("web")
	sim.Attach(w.coreID, "web", "SHARED_DB", nil)
	ns := "credential:analyst"
	sim.Attach(w.coreID, "web", "SHARED_DB", &ns)
	w.c = New(Options{APIKey: key, PlatformURL: w.platform, DataURL: w.dataBase, UserAgent: userAgent,
		PollInterval: 50 * time.Millisecond, MaxPollInterval: 200 * time.Millisecond, RetryBudget: 10 * time.Second})
	if err := (Options{PlatformURL: w.platform, DataURL: w.dataBase}).Validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSimResolveEveryForm(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	shopAddon := ""
	for _, tc := range []struct {
		app, arg, addon, billing, attachment string
		sources                              []string
	}{
		{"shop", "DATABASE_URL", w.shopID, "shop", "DATABASE", []string{"DATABASE"}},
		{"shop", "DATABASE", w.shopID, "shop", "DATABASE", []string{"DATABASE"}},
		{"shop", "HEROKU_POSTGRESQL_BLUE_URL", w.blueID, "shop", "HEROKU_POSTGRESQL_BLUE", []string{"HEROKU_POSTGRESQL_BLUE"}},
		{"shop", "HEROKU_POSTGRESQL_BLUE", w.blueID, "shop", "HEROKU_POSTGRESQL_BLUE", []string{"HEROKU_POSTGRESQL_BLUE"}},
		{"web", "SHARED_DB", w.coreID, "core", "SHARED_DB", []string{"DATABASE"}},
		{"web", "core::DATABASE_URL", w.coreID, "core", "DATABASE", []string{"DATABASE"}},
	} {
		db, err := w.c.Resolve(ctx, tc.app, tc.arg)
		if err != nil {
			t.Errorf("%s %s: %v", tc.app, tc.arg, err)
			continue
		}
		if db.App != tc.app || db.AddonID != tc.addon || db.BillingApp != tc.billing || db.Attachment != tc.attachment ||
			!slices.Equal(db.SourceNames, tc.sources) || !strings.HasPrefix(db.Plan, "heroku-postgresql:") || db.AddonName == "" {
			t.Errorf("%s %s resolved to %+v", tc.app, tc.arg, db)
		}
		if tc.addon == w.shopID {
			shopAddon = db.AddonName
		}
	}
	// The add-on's own name.
	if db, err := w.c.Resolve(ctx, "shop", shopAddon); err != nil || db.AddonID != w.shopID {
		t.Errorf("add-on name %s: %+v, %v", shopAddon, db, err)
	}
	// The valid options come in Heroku's order of the attachments: by id.
	for arg, want := range map[string]string{
		"HEROKU_POSTGRESQL_NOPE": "Unknown database: HEROKU_POSTGRESQL_NOPE_URL. Valid options are: ",
		"REDIS_URL":              "Unknown database: REDIS_URL. Valid options are: ",
	} {
		_, err := w.c.Resolve(ctx, "shop", arg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", arg, err, want)
			continue
		}
		_, options, _ := strings.Cut(err.Error(), want)
		got := strings.Split(options, ", ")
		slices.Sort(got)
		if !slices.Equal(got, []string{"DATABASE_URL", "HEROKU_POSTGRESQL_BLUE_URL"}) {
			t.Errorf("%s: valid options %q, want DATABASE_URL and HEROKU_POSTGRESQL_BLUE_URL", arg, options)
		}
	}
	if _, err := w.c.Resolve(ctx, "nope", "DATABASE_URL"); err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "Couldn't find that app.") {
		t.Errorf("unknown app: %v", err)
	}
	w.sim.AddApp("bare")
	if _, err := w.c.Resolve(ctx, "bare", "DATABASE_URL"); err == nil || !strings.Contains(err.Error(), "bare has no databases") {
		t.Errorf("app without databases: %v", err)
	}
}

// TestSimCaptureWaitLatestDownload runs the whole Heroku side for a database attached to one
// app and billed to another: every transfer call must go to the billing app.
func TestSimCaptureWaitLatestDownload(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	if email, err := w.c.Account(ctx); err != nil || email != "ops@example.com" {
		t.Fatalf("account: %q, %v", email, err)
	}
	db, err := w.c.Resolve(ctx, "web", "SHARED_DB")
	if err != nil {
		t.Fatal(err)
	}
	// A 503 that reaches the client before Heroku started anything: retried, one backup only.
	w.sim.Faults().FailNextPath("data", "/backups", 503, 1, 0)
	started, err := w.c.Capture(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if started.Finished() || !started.IsBackup() || started.Name() != "b001" {
		t.Errorf("capture answered %+v", started)
	}
	var polls int
	done, err := w.c.Wait(ctx, db, started, time.Minute, func(Transfer, error) { polls++ })
	if err != nil {
		t.Fatal(err)
	}
	if !done.OK() || done.ProcessedBytes <= 0 || polls == 0 {
		t.Fatalf("wait = %+v after %d polls", done, polls)
	}
	latest, err := w.c.Latest(ctx, db)
	if err != nil || latest.UUID != done.UUID {
		t.Fatalf("latest = %s, %v; want %s", latest.Name(), err, done.Name())
	}
	if got, err := w.c.Transfer(ctx, db, done.Num); err != nil || got.UUID != done.UUID {
		t.Errorf("transfer %d: %+v, %v", done.Num, got, err)
	}
	signed, err := w.c.PublicURL(ctx, db, latest)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(signed.ExpiresAt) < 50*time.Minute || time.Until(signed.ExpiresAt) > time.Hour+time.Minute {
		t.Errorf("signed URL expires at %s", signed.ExpiresAt)
	}
	resp, err := http.Get(signed.URL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "PGDMP") || int64(len(body)) != done.ProcessedBytes {
		t.Errorf("download: %s, %d bytes starting %q; Heroku said %d", resp.Status, len(body), body[:min(len(body), 5)], done.ProcessedBytes)
	}
	if path, ok := w.sim.Backup("core", done.Num); !ok {
		t.Error("the simulator holds no backup under the billing app")
	} else if want, _ := os.ReadFile(path); string(want) != string(body) {
		t.Error("the download differs from the backup")
	}

	var backupPosts int
	for _, r := range w.sim.Requests() {
		if r.API == "data" && strings.Contains(r.Path, "/apps/web/") {
			t.Errorf("%s %s: transfers asked for under the attaching app", r.Method, r.Path)
		}
		if r.API == "data" && r.Method == "POST" && strings.HasSuffix(r.Path, "/backups") {
			backupPosts++
		}
		if r.API != "storage" && r.Header.Get("Authorization") != "Bearer "+key {
			t.Errorf("%s %s without the key", r.Method, r.Path)
		}
		if r.API == "storage" && r.Header.Get("Authorization") != "" {
			t.Errorf("the signed URL was fetched with an Authorization header")
		}
	}
	if backupPosts != 2 {
		t.Errorf("%d capture POSTs, want 2 (one refused with 503, one accepted)", backupPosts)
	}
}

// TestSimLatestIsThisDatabasesBackup: shop's other database has the newer backup.
func TestSimLatestIsThisDatabasesBackup(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	main, err := w.c.Resolve(ctx, "shop", "DATABASE_URL")
	if err != nil {
		t.Fatal(err)
	}
	blue, err := w.c.Resolve(ctx, "shop", "HEROKU_POSTGRESQL_BLUE")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Latest(ctx, main); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("latest before any backup: %v", err)
	}
	capture := func(db Database) Transfer {
		t.Helper()
		tr, err := w.c.Capture(ctx, db)
		if err == nil {
			tr, err = w.c.Wait(ctx, db, tr, time.Minute, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	mine := capture(main)
	theirs := capture(blue)
	if theirs.Num <= mine.Num || !theirs.CreatedAt.After(mine.CreatedAt.Time.Add(-time.Second)) {
		t.Fatalf("the other database's backup %s is not the newer one (%s)", theirs.Name(), mine.Name())
	}
	if got, err := w.c.Latest(ctx, main); err != nil || got.UUID != mine.UUID {
		t.Errorf("latest of DATABASE = %s, %v; want %s", got.Name(), err, mine.Name())
	}
	if got, err := w.c.Latest(ctx, blue); err != nil || got.UUID != theirs.UUID {
		t.Errorf("latest of BLUE = %s, %v; want %s", got.Name(), err, theirs.Name())
	}
}

func TestSimFailuresAndRefusals(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	db, err := w.c.Resolve(ctx, "shop", "DATABASE_URL")
	if err != nil {
		t.Fatal(err)
	}
	// A capture that fails on Heroku carries its log lines.
	w.sim.Faults().FailCaptures(1, "pg_dump: error: query failed: ERROR: out of shared memory")
	tr, err := w.c.Capture(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.c.Wait(ctx, db, tr, time.Minute, nil)
	var terr *TransferError
	if !errors.As(err, &terr) || !strings.Contains(err.Error(), "out of shared memory") || !strings.Contains(err.Error(), "backup b001 failed on Heroku") {
		t.Fatalf("failed capture: %v", err)
	}
	if _, err := w.c.Latest(ctx, db); !errors.Is(err, ErrNoBackup) {
		t.Errorf("a failed backup counted as the latest: %v", err)
	}

	// Cancelling a running capture by uuid fails it.
	w.sim.Faults().SlowCaptures(time.Minute)
	tr, err = w.c.Capture(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Wait(ctx, db, tr, 300*time.Millisecond, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow capture: %v", err)
	}
	if err := w.c.Cancel(ctx, db, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Wait(ctx, db, tr, time.Minute, nil); !errors.As(err, &terr) || !strings.Contains(err.Error(), "was cancelled") {
		t.Errorf("cancelled capture: %v", err)
	}
	w.sim.Faults().Reset()

	// The rate limit is waited out.
	w.sim.Faults().FailNext("platform", 429, 2, time.Second)
	if _, err := w.c.Resolve(ctx, "shop", "DATABASE_URL"); err != nil {
		t.Errorf("resolve through a rate limit: %v", err)
	}

	// A database the Data API does not know.
	gone := db
	gone.AddonID = "00000000-0000-4000-8000-000000000000"
	if _, err := w.c.Capture(ctx, gone); err == nil || !strings.Contains(err.Error(), "not provisioned yet") || !IsNotFound(err) {
		t.Errorf("unknown database: %v", err)
	}

	// A wrong key says what to do, and never shows itself.
	bad := New(Options{APIKey: "hrku-revoked-0000", PlatformURL: w.platform, DataURL: w.dataBase})
	_, err = bad.Resolve(ctx, "shop", "DATABASE_URL")
	if err == nil || !strings.Contains(err.Error(), "authorizations:create") || strings.Contains(err.Error(), "hrku-revoked") || !IsPermanent(err) {
		t.Errorf("wrong key: %v", err)
	}
}
