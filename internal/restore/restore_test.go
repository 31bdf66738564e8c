package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/dumpsource"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/logging"
	"github.com/pgoffsite/pgoffsite/internal/pgrestore"
	"github.com/pgoffsite/pgoffsite/internal/scrub"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/verify"
)

// fakeDatabase holds objects and restores as told.
type fakeDatabase struct {
	objects  []string
	result   verify.Result
	restored []verify.Options
}

func (f *fakeDatabase) Objects(ctx context.Context, url string) ([]string, error) {
	return f.objects, nil
}
func (f *fakeDatabase) Restore(ctx context.Context, src verify.Source, key string, o verify.Options) verify.Result {
	f.restored = append(f.restored, o)
	return f.result
}

type fakeSource struct{}

func (fakeSource) List(ctx context.Context, prefix string) (store.Listing, error) {
	return store.Listing{}, nil
}
func (fakeSource) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("not used")
}
func (fakeSource) Location(key string) string { return "file:///archives/" + key }

// fakeHeroku records what was asked of it.
type fakeHeroku struct{ asked []string }

func (f *fakeHeroku) Resolve(ctx context.Context, app, database string) (heroku.Database, error) {
	f.asked = append(f.asked, "resolve "+app+":"+database)
	return heroku.Database{App: app, AddonName: "postgresql-x-1"}, nil
}
func (f *fakeHeroku) DatabaseURL(ctx context.Context, db heroku.Database) (heroku.Secret, error) {
	f.asked = append(f.asked, "url")
	return "postgres://u:herokuDbPassw0rd@127.0.0.1:5432/d", nil
}
func (f *fakeHeroku) Restore(ctx context.Context, db heroku.Database, backupURL string) (heroku.Transfer, error) {
	f.asked = append(f.asked, "restore "+backupURL)
	return heroku.Transfer{}, nil
}
func (f *fakeHeroku) Wait(ctx context.Context, db heroku.Database, t heroku.Transfer, timeout time.Duration, progress func(heroku.Transfer, error)) (heroku.Transfer, error) {
	f.asked = append(f.asked, fmt.Sprint("wait ", timeout))
	return t, nil
}

type fakeSigner string

func (s fakeSigner) SignedURL(ctx context.Context, key string) (string, error) { return string(s), nil }

func deps(db Database, out *bytes.Buffer) Deps {
	red := &logging.Redactor{}
	return Deps{Open: func(context.Context) (verify.Source, error) { return fakeSource{}, nil }, Database: db,
		Log: logging.New(out, "logfmt", "info", red), Redactor: red}
}

// A database that is not empty is refused before the archive is read, naming what it holds and
// the way to replace it; with clean it is restored in clean mode.
func TestToPostgresRefusesADatabaseThatIsNotEmpty(t *testing.T) {
	db := &fakeDatabase{objects: []string{"table public.orders"}}
	var out bytes.Buffer
	err := ToPostgres(context.Background(), deps(db, &out), "postgres://u:pw@h:5432/shop", false, Options{From: "shop/x.dump"})
	if err == nil || !strings.Contains(err.Error(), "database shop is not empty (it holds table public.orders)") ||
		!strings.Contains(err.Error(), "--clean --confirm shop") || len(db.restored) != 0 {
		t.Fatalf("err %v, restored %d times", err, len(db.restored))
	}
	if err := ToPostgres(context.Background(), deps(db, &out), "postgres://u:pw@h:5432/shop", true, Options{From: "shop/x.dump"}); err != nil ||
		len(db.restored) != 1 || !db.restored[0].Clean {
		t.Fatalf("with clean: %v %+v", err, db.restored)
	}
}

// A failed restore says what the database holds now.
func TestFailureSaysWhatTheDatabaseHolds(t *testing.T) {
	for _, tc := range []struct {
		res  verify.Result
		want string
	}{
		{verify.Result{Err: errors.New("count differs"), Committed: true}, "the restore was committed: the database holds the archive's data as restored, check it or restore again with --clean"},
		{verify.Result{Err: fmt.Errorf("x: %w", pgrestore.ErrCommittedEarly)}, "restore again with --clean from a sound archive"},
		{verify.Result{Err: fmt.Errorf("x: %w", pgrestore.ErrRolledBack)}, "x: "},
		{verify.Result{Err: errors.New("store down")}, "nothing was restored: the database is as it was"},
	} {
		var out bytes.Buffer
		err := ToPostgres(context.Background(), deps(&fakeDatabase{result: tc.res}, &out), "postgres://h/shop", false,
			Options{From: "shop/x.dump", Explain: func(err error, key string) error { return fmt.Errorf("%w (explained for %s)", err, key) }})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "explained for shop/x.dump") {
			t.Errorf("%v: %v, want %q", tc.res.Err, err, tc.want)
		}
	}
}

// An encrypted archive without an identity asks nothing of Heroku; with one it is restored in
// clean mode into the database's own URL, over TLS, the URL's password scrubbed.
func TestEncryptedToHeroku(t *testing.T) {
	var out bytes.Buffer
	hk, db := &fakeHeroku{}, &fakeDatabase{result: verify.Result{Err: verify.ErrNoIdentity}}
	d := deps(db, &out)
	d.Heroku = hk
	if err := EncryptedToHeroku(context.Background(), d, "shop", "DATABASE_URL", Options{From: "shop/x.dump.age"}); !errors.Is(err, verify.ErrNoIdentity) || len(hk.asked) != 0 {
		t.Fatalf("no identity: %v, asked %v", err, hk.asked)
	}
	// An identity: any non-nil value will do for the fake database.
	ids, err := agecryptIdentities(t)
	if err != nil {
		t.Fatal(err)
	}
	db.result = verify.Result{Tables: 2, Rows: 10}
	if err := EncryptedToHeroku(context.Background(), d, "shop", "DATABASE_URL", Options{From: "shop/x.dump.age", Identities: ids}); err != nil {
		t.Fatal(err)
	}
	last := db.restored[len(db.restored)-1]
	if !last.Clean || last.RestoreTo != "postgres://u:herokuDbPassw0rd@127.0.0.1:5432/d" {
		t.Errorf("restored with %+v", last)
	}
	if s := d.Redactor.Scrub(last.RestoreTo); strings.Contains(s, "herokuDbPassw0rd") {
		t.Errorf("the database's URL is not a secret: %s", s)
	}
}

// Heroku restores from the signed URL, which becomes a secret; the wait has BACKUP_CAPTURE_TIMEOUT.
func TestToHeroku(t *testing.T) {
	var out bytes.Buffer
	hk := &fakeHeroku{}
	d := deps(nil, &out)
	d.Heroku, d.Signer = hk, fakeSigner("https://b.s3.amazonaws.com/shop/x.dump?X-Amz-Signature=abc123")
	if err := ToHeroku(context.Background(), d, "shop", "DATABASE_URL", Options{From: "shop/x.dump", CaptureTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(hk.asked, ", "); got != "resolve shop:DATABASE_URL, restore https://b.s3.amazonaws.com/shop/x.dump?X-Amz-Signature=abc123, wait 1h0m0s" {
		t.Errorf("asked %s", got)
	}
	if s := d.Redactor.Scrub("https://b.s3.amazonaws.com/shop/x.dump?X-Amz-Signature=abc123"); strings.Contains(s, "abc123") {
		t.Errorf("the signed URL is not a secret: %s", s)
	}
}

// pg_restore reaches a Heroku database over TLS whatever its config var says (loopback aside),
// with the config var's password; every form of the URL is a secret to scrub.
func TestRestoreHerokuURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u:p%2Fw@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d", "postgres://u:p%2Fw@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d?sslmode=require"},
		{"postgres://u:pw@db.example.com/d?sslmode=disable", "postgres://u:pw@db.example.com/d?sslmode=require"},
		{"postgres://u:pw@127.0.0.1:5432/d", "postgres://u:pw@127.0.0.1:5432/d"},
	} {
		got, secrets, err := herokuRestoreURL(dumpsource.Database{URL: tt.in, RequireTLS: true})
		if err != nil || got != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.in, got, err, tt.want)
		}
		red := scrub.New(secrets...)
		if out := red.Scrub(tt.in + " " + got); strings.Contains(out, "@") {
			t.Errorf("%s: not scrubbed: %s", tt.in, out)
		}
	}
	if _, _, err := herokuRestoreURL(dumpsource.Database{URL: "mysql://u:pw@h/d"}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("a URL that is not postgres://: %v", err)
	}
}

func agecryptIdentities(t *testing.T) (*agecrypt.Identities, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return agecrypt.ParseIdentities(id.String())
}
