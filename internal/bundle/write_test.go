package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/fetch"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
)

const simKey = "hk-test-key"

// memStore keeps objects as one destination would: an object already there is not written
// again (AlreadyArchived), and a body that does not match its announced SHA-256 is refused.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	writes  map[string]int
}

func (m *memStore) StoreStream(ctx context.Context, s archive.Stream) (archive.Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[s.Key]; ok {
		return archive.Stored{Key: s.Key, AlreadyArchived: true}, nil
	}
	b, err := io.ReadAll(s.Body)
	if err != nil {
		return archive.Stored{Key: s.Key}, err
	}
	if sum := sha256.Sum256(b); s.SHA256 != "" && hex.EncodeToString(sum[:]) != s.SHA256 {
		return archive.Stored{Key: s.Key}, fmt.Errorf("%s: %w", s.Key, archive.ErrMismatch)
	}
	m.objects[s.Key], m.writes[s.Key] = b, m.writes[s.Key]+1
	return archive.Stored{Key: s.Key, Bytes: int64(len(b))}, nil
}

type nopRedactor struct{}

func (nopRedactor) Add(...string) {}

func newWriter(t *testing.T, sim *herokusim.Sim) (*Writer, *memStore) {
	platform, _ := herokusim.Serve(t, sim)
	st := &memStore{objects: map[string][]byte{}, writes: map[string]int{}}
	return &Writer{Heroku: heroku.New(heroku.Options{APIKey: simKey, PlatformURL: platform}), Store: st, Download: &fetch.Ranged{},
		Redact: nopRedactor{}, Log: zerolog.Nop(), Version: "test"}, st
}

// A target whose deploy is 300 config releases back, changing config between runs, is bundled
// three times with one slug upload: each release.json names the same slug key, the one of the
// release that deployed it. Its 250 custom domains are all recorded, past Heroku's first page.
func TestBundleStoresASlugOnceAcrossConfigReleases(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: simKey})
	w, st := newWriter(t, sim)
	slug := []byte("a slug's bytes, gzip in real life")
	deploy := sim.Deploy("shop", slug, map[string]string{"web": "bin/web"}, "4f2a9c1e0d3b")
	for i := range 300 {
		sim.SetConfigVars("shop", map[string]string{"N": fmt.Sprint(i)})
	}
	for i := range 250 {
		sim.AddDomain("shop", fmt.Sprintf("www%03d.shop.example", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var keys []string
	for run := range 3 {
		if run > 0 {
			sim.SetConfigVars("shop", map[string]string{"RUN": fmt.Sprint(run)})
		}
		res := w.Apps(ctx, []archive.Target{{App: "shop", Database: "DATABASE_URL"}})
		if len(res) != 1 || res[0].Err != nil {
			t.Fatalf("run %d: %+v", run+1, res)
		}
		var rec Record
		if err := json.Unmarshal(st.objects[res[0].Key], &rec); err != nil {
			t.Fatalf("run %d: release.json: %v", run+1, err)
		}
		if rec.Slug == nil || rec.Slug.FromRelease != deploy || rec.Slug.Key != Key("shop", deploy, SlugName) {
			t.Fatalf("run %d: v%d's slug %+v, want the one filed with v%d", run+1, rec.Release, rec.Slug, deploy)
		}
		if err := rec.checkLayout("shop", rec.Release); err != nil {
			t.Errorf("run %d: %v", run+1, err)
		}
		if len(rec.Domains) != 251 {
			t.Errorf("run %d: %d domains recorded, want the 250 custom ones and the herokuapp.com one", run+1, len(rec.Domains))
		}
		keys = append(keys, res[0].Key)
	}
	if keys[0] == keys[1] || keys[1] == keys[2] {
		t.Errorf("release.json keys %q: want one per release", keys)
	}
	uploads := 0
	for k, n := range st.writes {
		if strings.HasSuffix(k, "/"+SlugName) {
			uploads += n
			if string(st.objects[k]) != string(slug) {
				t.Errorf("%s holds %q", k, st.objects[k])
			}
		}
	}
	if uploads != 1 {
		t.Errorf("%d slug uploads in three runs, want 1 (%v)", uploads, st.writes)
	}
}

// A Fir-generation app has no slug to bundle: the bundle says so, naming the generation,
// before reading anything else of the app.
func TestBundleRefusesAFirApp(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: simKey})
	w, st := newWriter(t, sim)
	sim.AddApp("fir-shop")
	sim.SetGeneration("fir-shop", heroku.GenerationFir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := w.Apps(ctx, []archive.Target{{App: "fir-shop", Database: "DATABASE_URL"}})
	if len(res) != 1 || !errors.Is(res[0].Err, heroku.ErrFir) ||
		!strings.Contains(res[0].Err.Error(), `app fir-shop is of Heroku's Fir generation (generation "fir")`) ||
		!strings.Contains(res[0].Err.Error(), "OCI images, not slugs") {
		t.Fatalf("a Fir app's bundle: %+v", res)
	}
	if len(st.objects) != 0 {
		t.Errorf("stored %d objects for a Fir app", len(st.objects))
	}
	for _, r := range sim.Requests() {
		if strings.HasPrefix(r.Path, "/apps/fir-shop/") {
			t.Errorf("read %s %s after learning the app is Fir", r.Method, r.Path)
		}
	}
}

// restore-app sets a registry buildpack by its name, as the Heroku CLI does, and a URL as it is;
// Heroku then lists the first as its urn:buildpack: form again.
func TestRestoreAppSetsBuildpacksAsTheCLI(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: simKey})
	herokusim.Serve(t, sim) // the storage server
	var mu sync.Mutex
	var put []string
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/buildpack-installations") {
			b, _ := io.ReadAll(r.Body)
			var body struct{ Updates []struct{ Buildpack string } }
			json.Unmarshal(b, &body)
			mu.Lock()
			for _, u := range body.Updates {
				put = append(put, u.Buildpack)
			}
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		sim.Platform().ServeHTTP(w, r)
	}))
	defer platform.Close()
	c := heroku.New(heroku.Options{APIKey: simKey, PlatformURL: platform.URL})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := Record{BundleVersion: Version, App: "shop", Release: 7, Region: "us", Stack: "heroku-24",
		Buildpacks: []string{"urn:buildpack:heroku/ruby", "https://github.com/heroku/heroku-buildpack-nodejs.tgz"}}
	p := (&Loaded{Record: rec}).Plan("shop-copy")
	if err := (Deployer{Heroku: c, HTTP: http.DefaultClient, Log: zerolog.Nop()}).Deploy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if want := []string{"heroku/ruby", "https://github.com/heroku/heroku-buildpack-nodejs.tgz"}; !slices.Equal(put, want) {
		t.Errorf("restore-app set %q, want %q", put, want)
	}
	if st, _ := sim.App("shop-copy"); !slices.Equal(st.Buildpacks, rec.Buildpacks) {
		t.Errorf("the app's buildpacks %q, want %q", st.Buildpacks, rec.Buildpacks)
	}
	if got, err := c.Buildpacks(ctx, "shop-copy"); err != nil || !slices.Equal(got, rec.Buildpacks) {
		t.Errorf("listed back: %q, %v", got, err)
	}
}

// A release archived before ARCHIVE_RECIPIENTS was set is completed once they are: the next run
// archives its config values and release-config.json naming them (release.json stays as it was),
// the run after writes nothing; and a release-config.json already there when the values were
// not is refused as planted.
func TestBundleCompletesAReleaseArchivedWithoutValues(t *testing.T) {
	sim := herokusim.New(herokusim.Options{Token: simKey})
	w, st := newWriter(t, sim)
	sim.Deploy("shop", []byte("slug"), map[string]string{"web": "bin/web"}, "4f2a9c1e0d3b")
	sim.SetConfigVars("shop", map[string]string{"SECRET": "sk_live_0a1b2c3d"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	targets := []archive.Target{{App: "shop", Database: "DATABASE_URL"}}
	first := w.Apps(ctx, targets)
	if len(first) != 1 || first[0].Err != nil || first[0].AlreadyArchived {
		t.Fatalf("without recipients: %+v", first)
	}
	plain := string(st.objects[first[0].Key])

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if w.Encrypt, err = agecrypt.ParseRecipients(id.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	second := w.Apps(ctx, targets)
	if len(second) != 1 || second[0].Err != nil || second[0].AlreadyArchived {
		t.Fatalf("with recipients added: %+v, want the release completed, not already archived", second)
	}
	rel := first[0].Key[:strings.LastIndex(first[0].Key, "/")+1]
	if second[0].Key != rel+CompletedName || !Completes(second[0].Key) {
		t.Fatalf("completed as %s, want %s", second[0].Key, rel+CompletedName)
	}
	var rec Record
	if err := json.Unmarshal(st.objects[second[0].Key], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ConfigValues == nil || rec.ConfigValues.Key != rel+ConfigName || st.objects[rel+ConfigName] == nil {
		t.Errorf("the completed record names values %+v; config.age stored: %v", rec.ConfigValues, st.objects[rel+ConfigName] != nil)
	}
	if string(st.objects[first[0].Key]) != plain || st.writes[first[0].Key] != 1 {
		t.Errorf("release.json was rewritten")
	}
	if app, release, err := ParseKey(second[0].Key); err != nil || app != "shop" || release != rec.Release {
		t.Errorf("ParseKey(%s) = %s, %d, %v", second[0].Key, app, release, err)
	}

	third := w.Apps(ctx, targets)
	if len(third) != 1 || third[0].Err != nil || !third[0].AlreadyArchived {
		t.Errorf("a third run: %+v, want already archived", third)
	}
	for k, n := range st.writes {
		if n != 1 {
			t.Errorf("%s written %d times", k, n)
		}
	}

	// Values new, both records there: someone wrote release-config.json before pgoffsite did.
	delete(st.objects, rel+ConfigName)
	if res := w.Apps(ctx, targets); len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "someone with write access") {
		t.Errorf("a release-config.json there before its values: %+v", res)
	}
}
