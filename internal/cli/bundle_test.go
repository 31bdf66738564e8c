package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// slugTarball is a real slug: a gzip tarball with ./app inside, with an incompressible file so
// that its size is not trivial.
func slugTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	blob := make([]byte, 300<<10)
	rand.Read(blob)
	files := map[string][]byte{"./app/Procfile": []byte("web: bin/web\nworker: bin/worker\nclock: bin/clock\n"),
		"./app/bin/web": []byte("#!/bin/sh\nexec ./server\n"), "./app/vendor/blob.bin": blob}
	names := []string{"./app/Procfile", "./app/bin/web", "./app/vendor/blob.bin"}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

type bundleApp struct {
	vars    map[string]string // the app's own config vars
	all     map[string]string // every config var, add-on ones included
	tarball []byte
	release int // the current release: the one with the slug
	procs   []herokusim.Process
}

// newBundleApp sets up "shop": a Postgres and a Redis add-on, 40 config vars, a real slug and a
// 3-process formation.
// bundledEncrypted makes the app of newBundleApp and archives its bundle with its config values
// encrypted to a new age key, which it returns.
func bundledEncrypted(t *testing.T, w *world) (bundleApp, testenv.AgeKey) {
	t.Helper()
	app := newBundleApp(t, w)
	key := testenv.NewAgeKey(t)
	env := w.env("shop")
	env["ARCHIVE_RECIPIENTS"] = key.Recipient
	if code, _ := w.run(env, "bundle"); code != ExitOK {
		t.Fatalf("bundle: exit %d", code)
	}
	return app, key
}

func newBundleApp(t *testing.T, w *world) bundleApp {
	t.Helper()
	w.database("shop", "DATABASE", 50)
	w.sim.AddAddon("shop", "REDIS", "heroku-redis:mini")
	b := bundleApp{vars: map[string]string{}, tarball: slugTarball(t)}
	for i := range 40 {
		r := make([]byte, 12)
		rand.Read(r)
		b.vars[fmt.Sprintf("SECRET_%02d", i)] = fmt.Sprintf("sk_live_%02d_%s", i, hex.EncodeToString(r))
	}
	w.sim.SetConfigVars("shop", b.vars)
	w.sim.SetBuildpacks("shop", "heroku/go")
	w.sim.SetRegion("shop", "eu")
	w.sim.AddDomain("shop", "www.shop.example")
	b.release = w.sim.Deploy("shop", b.tarball, map[string]string{"web": "bin/web", "worker": "bin/worker", "clock": "bin/clock"}, "4f2a9c1e0d3b")
	b.procs = []herokusim.Process{{Type: "clock", Quantity: 1, Size: "basic"}, {Type: "web", Quantity: 2, Size: "standard-1X"}, {Type: "worker", Quantity: 3, Size: "standard-2X"}}
	w.sim.SetFormation("shop", b.procs...)
	b.all = w.configVars("shop")
	if len(b.all) != 42 {
		t.Fatalf("the app has %d config vars, want 40 and the two add-ons'", len(b.all))
	}
	return b
}

// configVars reads the app's config vars as Heroku answers them.
func (w *world) configVars(app string) map[string]string {
	w.t.Helper()
	hk := heroku.New(heroku.Options{APIKey: apiKey, PlatformURL: w.platform, DataURL: w.data})
	vars, err := hk.ConfigVars(context.Background(), app)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range vars {
		out[k] = v.Reveal()
	}
	return out
}

// objects returns every object in the bucket, by key, with its content.
func (w *world) objects() map[string][]byte {
	w.t.Helper()
	out := map[string][]byte{}
	for _, k := range w.keys() {
		out[k] = w.object(k)
	}
	return out
}

// assertNoValue fails when any value appears in what (the log, an object).
func assertNoValue(t *testing.T, values map[string]string, name string, what []byte) {
	t.Helper()
	for k, v := range values {
		if bytes.Contains(what, []byte(v)) {
			t.Errorf("the value of %s appears in %s", k, name)
		}
	}
}

func (w *world) bundleKeys() []string {
	var out []string
	for _, k := range w.keys() {
		if strings.Contains(k, "/_app/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// signingKey makes a bundle signing key with the real ssh-keygen: the private key's text, the
// public key's line, and the .pub file.
func signingKey(t *testing.T) (priv, pub, pubFile string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "bundle-signing")
	if out, err := exec.Command(testenv.SSHKeygenBinary(t), "-q", "-t", "ed25519", "-N", "", "-C", "pgoffsite-bundles", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	p, _ := os.ReadFile(f)
	q, _ := os.ReadFile(f + ".pub")
	return string(p), string(q), f + ".pub"
}

// assertNoKey fails when a line of the private key appears in out.
func assertNoKey(t *testing.T, priv, out string) {
	t.Helper()
	for _, line := range strings.Split(priv, "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line) {
			t.Errorf("a line of BUNDLE_SIGNING_KEY appears in the output")
			return
		}
	}
}

// boundValues is config.age's plaintext as the age tool decrypts it.
type boundValues struct {
	Format       string            `json:"format"`
	App          string            `json:"app"`
	Release      int               `json:"release"`
	ReleaseID    string            `json:"release_id"`
	SlugChecksum string            `json:"slug_checksum"`
	Values       map[string]string `json:"values"`
	Signature    *bundle.Signature `json:"signature"`
}

// A signed, bound bundle restores end to end: bundle archives the release signed with
// BUNDLE_SIGNING_KEY, its config values bound to it inside the encryption; restore-app checks it
// with the public half, prints the plan, and deploys it.
func TestBundleEncryptedAndRestoreApp(t *testing.T) {
	w := newWorld(t)
	app := newBundleApp(t, w)
	key := testenv.NewAgeKey(t)
	priv, pub, pubFile := signingKey(t)
	env := w.env("shop")
	env["ARCHIVE_RECIPIENTS"] = key.Recipient
	env["BUNDLE_SIGNING_KEY"] = priv
	code, out := w.run(env, "bundle")
	if code != ExitOK {
		t.Fatalf("bundle: exit %d", code)
	}
	assertNoKey(t, priv, out)
	if strings.Contains(out, "BUNDLE_SIGNING_KEY is not set") {
		t.Error("bundle warns of a missing signing key that is set")
	}
	v := fmt.Sprintf("pgbackups/shop/_app/v%d/", app.release)
	want := []string{v + "config.age", v + "release.json", v + "slug.tgz"}
	if got := w.bundleKeys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bundle objects %v, want %v", got, want)
	}
	relKey := fmt.Sprintf("shop/_app/v%d/release.json", app.release)
	if !strings.Contains(out, "key="+relKey) {
		t.Errorf("the log does not name the bundle's release.json %s", relKey)
	}
	assertNoValue(t, app.all, "the log", []byte(out))
	for k, body := range w.objects() {
		assertNoValue(t, app.all, k, body)
		assertNoKey(t, priv, string(body))
	}
	if !bytes.Equal(w.object(v+"slug.tgz"), app.tarball) {
		t.Error("the archived slug differs from the app's")
	}
	var rec bundle.Record
	if err := json.Unmarshal(w.object(v+"release.json"), &rec); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(app.all))
	for k := range app.all {
		names = append(names, k)
	}
	sort.Strings(names)
	if rec.BundleVersion != 2 || rec.App != "shop" || rec.Release != app.release || rec.Region != "eu" || rec.Stack != "heroku-24" ||
		!reflect.DeepEqual(rec.Buildpacks, []string{"urn:buildpack:heroku/go"}) || len(rec.Formation) != 3 || len(rec.ProcessTypes) != 3 ||
		!reflect.DeepEqual(rec.ConfigVarNames, names) || rec.Slug == nil || rec.Slug.Key != strings.TrimPrefix(v, "pgbackups/")+"slug.tgz" ||
		rec.Slug.Bytes != int64(len(app.tarball)) || !strings.HasPrefix(rec.Slug.Checksum, "SHA256:") || rec.Slug.Commit != "4f2a9c1e0d3b" ||
		len(rec.Addons) != 2 || rec.ConfigValues == nil || len(rec.Domains) != 2 || rec.Description == "" || rec.ReleaseID == "" {
		t.Errorf("release.json incomplete: %+v", rec)
	}
	fp := strings.Fields(runOut(t, testenv.SSHKeygenBinary(t), "-l", "-E", "sha256", "-f", pubFile))[1]
	if rec.Signature == nil || rec.Signature.Algorithm != "ed25519" || rec.Signature.Key != fp {
		t.Errorf("release.json's signature %+v, want ed25519 by %s", rec.Signature, fp)
	}
	for _, p := range rec.Formation {
		if p.Type == "worker" && (p.Quantity != 3 || p.Size != "standard-2X") {
			t.Errorf("formation of worker: %+v", p)
		}
	}
	// The config values decrypt with the real age to exactly the app's config, beside the
	// release they belong to, signed.
	age, _ := testenv.AgeBinary(t)
	cmd := exec.Command(age, "-d", "-i", key.File)
	cmd.Stdin = bytes.NewReader(w.object(v + "config.age"))
	plain, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	var doc boundValues
	if err := json.Unmarshal(plain, &doc); err != nil || !reflect.DeepEqual(doc.Values, app.all) {
		t.Errorf("config.age decrypts to %d vars (%v), want exactly the app's %d", len(doc.Values), err, len(app.all))
	}
	if doc.App != "shop" || doc.Release != app.release || doc.ReleaseID != rec.ReleaseID || doc.SlugChecksum != rec.Slug.Checksum ||
		doc.Signature == nil || doc.Signature.Key != fp {
		t.Errorf("config.age is not bound to its release: app %s release %d id %s slug %s signature %+v", doc.App, doc.Release, doc.ReleaseID,
			doc.SlugChecksum, doc.Signature)
	}

	// Without the identity: refused before anything is asked of Heroku.
	before := len(w.sim.Requests())
	if code, out := w.run(w.env("shop"), "restore-app", "--from", relKey, "--to", "shop-restored", "--confirm", "shop-restored"); code != ExitUsage ||
		!strings.Contains(out, "AGE_IDENTITY") || len(w.sim.Requests()) != before {
		t.Errorf("restore-app without the identity: exit %d, %d requests to Heroku", code, len(w.sim.Requests())-before)
	}
	if code, _ := w.run(w.env("shop"), "restore-app", "--from", relKey, "--to", "shop-restored"); code != ExitUsage {
		t.Errorf("restore-app without --confirm: exit %d", code)
	}

	// restore-app into a new app, the bundle checked with BUNDLE_VERIFY_KEY.
	renv := w.env("shop")
	renv["AGE_IDENTITY"] = key.Text
	renv["BUNDLE_VERIFY_KEY"] = pub
	code, out = w.run(renv, "restore-app", "--from", relKey, "--to", "shop-restored", "--confirm", "shop-restored")
	if code != ExitOK {
		t.Fatalf("restore-app: exit %d", code)
	}
	assertNoValue(t, app.all, "restore-app's output", []byte(out))
	plan := out[strings.Index(out, "restore-app will deploy into shop-restored"):]
	for _, s := range []string{"verified: signed by " + fp, "buildpacks     heroku/go", "worker       bin/worker", "worker       3 × standard-2X",
		"6 dynos in all", rec.Slug.Checksum, "(from release v" + fmt.Sprint(app.release) + ")", fmt.Sprintf("40 set from %sconfig.age (bound to shop v%d)", strings.TrimPrefix(v, "pgbackups/"), app.release)} {
		if !strings.Contains(plan, s) {
			t.Errorf("the plan does not say %q", s)
		}
	}
	if strings.Index(out, "restore-app will deploy") > strings.Index(out, "app ready") {
		t.Error("the plan is printed after the app was set up")
	}
	st, ok := w.sim.App("shop-restored")
	if !ok {
		t.Fatal("restore-app created no app")
	}
	if !bytes.Equal(st.Slug, app.tarball) {
		t.Error("the slug the new app received differs from the original")
	}
	if !reflect.DeepEqual(st.Config, app.vars) {
		t.Errorf("the new app's config has %d vars, want the original's %d without the add-ons'", len(st.Config), len(app.vars))
	}
	if !reflect.DeepEqual(st.Formation, app.procs) {
		t.Errorf("formation %+v, want %+v", st.Formation, app.procs)
	}
	if st.Region != "eu" || st.Stack != "heroku-24" || !reflect.DeepEqual(st.Buildpacks, []string{"urn:buildpack:heroku/go"}) {
		t.Errorf("region %s stack %s buildpacks %v", st.Region, st.Stack, st.Buildpacks)
	}
	for _, s := range []string{"heroku addons:create heroku-postgresql:standard-0 -a shop-restored --as DATABASE",
		"heroku addons:create heroku-redis:mini -a shop-restored --as REDIS", "pgoffsite restore --from shop/DATABASE/",
		"heroku domains:add www.shop.example -a shop-restored"} {
		if !strings.Contains(out, s) {
			t.Errorf("restore-app does not say %q", s)
		}
	}
	// Refused: an app that runs code already.
	if code, _ := w.run(renv, "restore-app", "--from", relKey, "--to", "shop-restored", "--confirm", "shop-restored"); code != ExitFailed {
		t.Errorf("restore-app into an app with a slug: exit %d, want %d", code, ExitFailed)
	}

	// An existing app that runs no code yet (an add-on already there) is used as it is; the
	// verify key may come as a file.
	w.sim.AddApp("shop-empty")
	w.sim.AddAddon("shop-empty", "REDIS", "heroku-redis:mini")
	fenv := withEnv(renv, "BUNDLE_VERIFY_KEY", "")
	if code, _ := w.run(fenv, "restore-app", "--from", relKey, "--to", "shop-empty", "--confirm", "shop-empty", "--verify-key", pubFile); code != ExitOK {
		t.Errorf("restore-app into an existing empty app: exit %d", code)
	} else if st, _ := w.sim.App("shop-empty"); !bytes.Equal(st.Slug, app.tarball) || !reflect.DeepEqual(st.Formation, app.procs) {
		t.Error("the existing empty app did not get the slug and formation")
	}

	// A second run with no new release writes nothing new.
	listed := w.listing()
	if code, _ := w.run(env, "bundle"); code != ExitOK {
		t.Fatalf("second bundle: exit %d", code)
	}
	if after := w.listing(); !reflect.DeepEqual(after, listed) {
		t.Errorf("a second run with no new release wrote: before %v, after %v", listed, after)
	}
	// A config change: a new release.json pointing at the slug already archived, which restores.
	w.sim.SetConfigVars("shop", map[string]string{"SECRET_00": "sk_live_rotated_0a1b2c3d4e"})
	code, out = w.run(env, "bundle")
	if code != ExitOK {
		t.Fatalf("bundle after a config change: exit %d", code)
	}
	if strings.Contains(out, "sk_live_rotated_0a1b2c3d4e") {
		t.Error("the new value appears in the log")
	}
	next := fmt.Sprintf("pgbackups/shop/_app/v%d/", app.release+1)
	got2 := w.bundleKeys()
	if !reflect.DeepEqual(got2, append(want[:3:3], next+"config.age", next+"release.json")) {
		t.Fatalf("after a config change: %v", got2)
	}
	var rec2 bundle.Record
	if err := json.Unmarshal(w.object(next+"release.json"), &rec2); err != nil {
		t.Fatal(err)
	}
	if rec2.Slug == nil || rec2.Slug.Key != rec.Slug.Key || rec2.Slug.FromRelease != app.release {
		t.Errorf("the new release's slug: %+v, want the existing %s", rec2.Slug, rec.Slug.Key)
	}
	nextKey := strings.TrimPrefix(next, "pgbackups/") + "release.json"
	if code, _ := w.run(renv, "restore-app", "--from", nextKey, "--to", "shop-rotated", "--confirm", "shop-rotated"); code != ExitOK {
		t.Errorf("restore-app of the config-only release: exit %d", code)
	} else if st, _ := w.sim.App("shop-rotated"); !bytes.Equal(st.Slug, app.tarball) || st.Config["SECRET_00"] != "sk_live_rotated_0a1b2c3d4e" {
		t.Error("the config-only release did not restore with the earlier release's slug and its own values")
	}
}

// runOut runs a command and returns its output, failing the test on an error.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
	return string(out)
}

// listing is every object's key and ETag and modification time.
func (w *world) listing() map[string]string {
	w.t.Helper()
	out, err := w.s3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket)})
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]string{}
	for _, o := range out.Contents {
		m[aws.ToString(o.Key)] = aws.ToString(o.ETag) + " " + o.LastModified.String()
	}
	return m
}

func TestBundleWithoutRecipientsStoresNoValue(t *testing.T) {
	w := newWorld(t)
	app := newBundleApp(t, w)
	w.database("shop", "ANALYTICS", 20)
	all := w.configVars("shop")
	env := w.env("shop:DATABASE shop:ANALYTICS")
	env["BACKUP_APP_BUNDLE"] = "true"
	m, env := w.withMonitor(env, "always")
	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("backup: exit %d", code)
	}
	hook := m.Bodies()["/hook"]
	if !strings.Contains(hook, "_app") {
		t.Errorf("the webhook does not report the bundle: %s", hook)
	}
	assertNoValue(t, all, "the webhook", []byte(hook))
	v := fmt.Sprintf("pgbackups/shop/_app/v%d/", app.release)
	if got := w.bundleKeys(); !reflect.DeepEqual(got, []string{v + "release.json", v + "slug.tgz"}) {
		t.Fatalf("bundle objects %v: want one bundle for the app, without config.age", got)
	}
	if n := strings.Count(out, "config var values are not archived, only their names"); n != 1 {
		t.Errorf("the warning appears %d times, want once", n)
	}
	assertNoValue(t, all, "the log", []byte(out))
	objs := w.objects()
	manifests := 0
	for k, body := range objs {
		assertNoValue(t, all, k, body)
		if strings.HasSuffix(k, ".json") && !strings.Contains(k, "/_app/") {
			manifests++
		}
	}
	if manifests != 2 {
		t.Errorf("%d dump manifests, want 2", manifests)
	}
	var rec bundle.Record
	if err := json.Unmarshal(w.object(v+"release.json"), &rec); err != nil || rec.ConfigValues != nil || len(rec.ConfigVarNames) != len(all) {
		t.Errorf("release.json: %v %+v", err, rec)
	}
}

func TestBundleSlugBlobWrong(t *testing.T) {
	w := newWorld(t)
	newBundleApp(t, w)
	for _, mode := range []string{"size", "checksum"} {
		t.Run(mode, func(t *testing.T) {
			w.t = t
			w.sim.SlugBlobFault("shop", mode)
			code, out := w.run(w.env("shop"), "bundle")
			if code != ExitFailed || !strings.Contains(out, "does not match its announced size or checksum") {
				t.Errorf("bundle with a slug blob of wrong %s: exit %d, want a clear failure", mode, code)
			}
			if got := w.bundleKeys(); len(got) != 0 {
				t.Errorf("visible after the failure: %v", got)
			}
		})
	}
}

// Row 7 of the trust issue: an app whose code release is older than its last 10 releases (here
// behind 1,100 config changes, past one page of Heroku's largest) is not empty, and restore-app
// leaves its code alone; so are an app with a formation and one with config vars of its own.
func TestRestoreAppRefusesAnAppThatIsNotEmpty(t *testing.T) {
	w := newWorld(t)
	app, key := bundledEncrypted(t, w)
	from := fmt.Sprintf("shop/_app/v%d/release.json", app.release)
	renv := w.env("shop")
	renv["AGE_IDENTITY"] = key.Text

	theirs := []byte("the code busy runs, released long ago")
	code := w.sim.Deploy("busy", theirs, map[string]string{"web": "bin/busy"}, "b0b0b0b0b0b0")
	for i := range 1100 {
		v := ""
		if i%2 == 0 {
			v = "on"
		}
		w.sim.SetConfigVars("busy", map[string]string{"MAINTENANCE": v}) // set and unset: no config left
	}
	before, _ := w.sim.App("busy")
	if before.Release != code+1100 || len(before.Config) != 0 || len(before.Formation) != 0 {
		t.Fatalf("busy: release v%d, %d config vars, formation %v", before.Release, len(before.Config), before.Formation)
	}
	n := len(w.sim.Requests())
	rc, out := w.run(renv, "restore-app", "--from", from, "--to", "busy", "--confirm", "busy")
	// Heroku's config releases carry the slug they run: the newest release names the old code.
	if rc != ExitFailed || !strings.Contains(out, fmt.Sprintf("the app busy exists and has released code (v%d)", code+1100)) {
		t.Errorf("restore-app into an app with old code: exit %d, want %d naming v%d", rc, ExitFailed, code+1100)
	}
	after, _ := w.sim.App("busy")
	if !bytes.Equal(after.Slug, theirs) || after.Release != before.Release || len(after.Config) != 0 || len(after.Buildpacks) != 0 {
		t.Error("restore-app changed the app it refused")
	}
	pages := 0
	for _, r := range w.sim.Requests()[n:] {
		if r.Method == "GET" && r.Path == "/apps/busy/releases" {
			pages++
		}
	}
	if pages != 1 {
		t.Errorf("restore-app read %d pages of busy's releases, want the first, whose newest release has the slug", pages)
	}

	w.sim.AddApp("scaled")
	w.sim.SetFormation("scaled", herokusim.Process{Type: "web", Quantity: 1, Size: "basic"})
	w.sim.AddApp("configured")
	w.sim.SetConfigVars("configured", map[string]string{"STRIPE_KEY": "sk_live_theirs_0123"})
	w.sim.AddAddon("configured", "REDIS", "heroku-redis:mini")
	for target, want := range map[string]string{"scaled": "the app scaled exists and has a formation (web)",
		"configured": "the app configured exists and has config vars of its own (STRIPE_KEY), which the bundle's would overwrite"} {
		rc, out := w.run(renv, "restore-app", "--from", from, "--to", target, "--confirm", target)
		if rc != ExitFailed || !strings.Contains(out, want) {
			t.Errorf("restore-app into %s: exit %d, want %d and %q", target, rc, ExitFailed, want)
		}
		if st, _ := w.sim.App(target); st.Slug != nil {
			t.Errorf("restore-app released code on %s", target)
		}
	}
	if st, _ := w.sim.App("configured"); st.Config["STRIPE_KEY"] != "sk_live_theirs_0123" || len(st.Config) != 1 {
		t.Errorf("the refused app's config changed: %d vars", len(st.Config))
	}
}

// Row 10 of the trust issue: bundle reports as itself — its webhook says "command":"bundle" and
// its heartbeat summary "pgoffsite bundle" — and pings BUNDLE_HEARTBEAT_URL, never the backup's
// HEARTBEAT_URL, whose dead man's switch a bundle run must not keep green.
func TestBundleReportsAsItself(t *testing.T) {
	w := newWorld(t)
	newBundleApp(t, w)
	m, env := w.withMonitor(w.env("shop"), "always")
	env["BUNDLE_HEARTBEAT_URL"] = m.URL + "/ping/bundle-7c2d"
	if code, _ := w.run(env, "bundle"); code != ExitOK {
		t.Fatalf("bundle: exit %d", code)
	}
	if got := m.Seen(); got != "POST /ping/bundle-7c2d/start,POST /ping/bundle-7c2d,POST /hook" {
		t.Errorf("the monitor saw %s; want the bundle's heartbeat and the webhook, not the backup's heartbeat", got)
	}
	bodies := m.Bodies()
	var hook struct {
		Command string `json:"command"`
		Targets []struct{ Database string }
	}
	if err := json.Unmarshal([]byte(bodies["/hook"]), &hook); err != nil || hook.Command != "bundle" || len(hook.Targets) != 1 || hook.Targets[0].Database != "_app" {
		t.Errorf("webhook %s (%v), want command bundle and the app's bundle", bodies["/hook"], err)
	}
	if !strings.HasPrefix(bodies["/ping/bundle-7c2d"], "pgoffsite bundle succeeded") {
		t.Errorf("heartbeat summary %q", bodies["/ping/bundle-7c2d"])
	}

	// Without BUNDLE_HEARTBEAT_URL a bundle run pings nothing; a backup still pings its own.
	m, env = w.withMonitor(w.env("shop"), "always")
	if code, _ := w.run(env, "bundle"); code != ExitOK {
		t.Fatalf("bundle: exit %d", code)
	}
	if got := m.Seen(); got != "POST /hook" {
		t.Errorf("without BUNDLE_HEARTBEAT_URL the monitor saw %s, want the webhook only", got)
	}
	m, env = w.withMonitor(w.env("shop"), "always")
	env["BUNDLE_HEARTBEAT_URL"] = m.URL + "/ping/bundle-7c2d"
	if code, _ := w.run(env, "backup"); code != ExitOK {
		t.Fatalf("backup: exit %d", code)
	}
	if got := m.Seen(); got != "POST /ping/9f1c-check-key/start,POST /ping/9f1c-check-key,POST /hook" || !strings.Contains(m.Bodies()["/hook"], `"command":"backup"`) {
		t.Errorf("backup: the monitor saw %s, webhook %s", got, m.Bodies()["/hook"])
	}
}
