package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/madmin-go/v3"
	"github.com/rs/zerolog"

	"github.com/pgoffsite/pgoffsite/internal/archive"
	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// keyed is a bucket on the test MinIO with versioning on (as setup-bucket leaves it), and two
// MinIO users holding exactly what `pgoffsite policy` prints: the uploader's policy for a store
// whose policies lack the conditional-write keys (MinIO's), and the reader's.
type keyed struct {
	w                *world
	uploader, reader *s3.Client
	readerEnv        map[string]string
	job              *archive.Job
	src              *plannedSource
	dump             []byte
}

func newKeyed(t *testing.T) *keyed {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.s3().PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &w.bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	k := &keyed{w: w}
	upKey, upSecret := k.user("uploader", "--conditional-writes=false")
	rdKey, rdSecret := k.user("reader", "--reader")
	k.uploader, k.reader = k.client(upKey, upSecret), k.client(rdKey, rdSecret)
	k.readerEnv = withEnv(w.env("shop"), "AWS_ACCESS_KEY_ID", rdKey, "AWS_SECRET_ACCESS_KEY", rdSecret)
	delete(k.readerEnv, "HEROKU_API_KEY") // status and verify read the bucket only
	dump, err := os.ReadFile("../archive/testdata/shop.dump")
	if err != nil {
		t.Fatal(err)
	}
	k.dump, k.src = dump, &plannedSource{}
	// The backup job itself, writing with the uploader's keys.
	st := s3store.New(k.uploader, s3store.Options{Bucket: w.bucket, Prefix: "pgbackups"})
	k.job = &archive.Job{Source: k.src, Destinations: []archive.Destination{{Name: "s3://" + w.bucket + "/pgbackups", Store: st}},
		Version: "test", Log: zerolog.Nop()}
	return k
}

// user adds a MinIO user holding the policy `pgoffsite policy args...` prints. The test MinIO
// speaks plain http, so the policy's TLS-only conditions are dropped (internal/bucket checks
// the policies with them against a MinIO serving TLS); every other condition stays.
func (k *keyed) user(name string, args ...string) (string, string) {
	w := k.w
	w.t.Helper()
	code, out := w.run(map[string]string{"ARCHIVE_URL": "s3://" + w.bucket + "/pgbackups", "AWS_REGION": w.minio.Region}, append([]string{"policy"}, args...)...)
	if code != ExitOK {
		w.t.Fatalf("policy %v: exit %d", args, code)
	}
	var doc map[string]any
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&doc); err != nil {
		w.t.Fatalf("policy %v: %v\n%s", args, err, out)
	}
	for _, st := range doc["Statement"].([]any) {
		st := st.(map[string]any)
		if c, ok := st["Condition"].(map[string]any); ok {
			delete(c, "Bool")
			if len(c) == 0 {
				delete(st, "Condition")
			}
		}
	}
	plain, _ := json.Marshal(doc)
	adm, err := madmin.New(strings.TrimPrefix(w.minio.Endpoint, "http://"), w.minio.AccessKey, w.minio.SecretKey, false)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx := context.Background()
	user, secret := name+"-"+w.bucket, name+"-secret-0123456789"
	if err := adm.AddCannedPolicy(ctx, user, plain); err != nil {
		w.t.Fatalf("add policy %s: %v\n%s", user, err, plain)
	}
	if err := adm.AddUser(ctx, user, secret); err != nil {
		w.t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{user}, User: user}); err != nil {
		w.t.Fatal(err)
	}
	return user, secret
}

func (k *keyed) client(ak, sk string) *s3.Client {
	return s3.New(s3.Options{Region: k.w.minio.Region, BaseEndpoint: aws.String(k.w.minio.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
}

// archive runs the backup job with the uploader's keys for a backup that finished at; it
// returns the dump's key under the prefix.
func (k *keyed) archive(backup string, at time.Time) string {
	k.w.t.Helper()
	*k.src = plannedSource{app: "shop", backup: backup, at: at.UTC().Truncate(time.Second), dump: k.dump}
	res := k.job.Archive(context.Background(), archive.Target{App: "shop", Database: "DATABASE_URL"})
	if res.Err != nil {
		k.w.t.Fatal(res.Err)
	}
	return catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: backup, At: at.UTC().Truncate(time.Second)})
}

// put writes body at key under the prefix with the uploader's keys and a plain PUT, as anyone
// holding them can: no If-None-Match.
func (k *keyed) put(key string, body []byte) {
	k.w.t.Helper()
	_, err := k.uploader.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &k.w.bucket, Key: aws.String("pgbackups/" + key),
		Body: bytes.NewReader(body)})
	if err != nil {
		k.w.t.Fatalf("plain PUT of %s with the uploader's keys: %v", key, err)
	}
}

// Row 2 on a store that cannot enforce If-None-Match in a policy (MinIO): the uploader's keys
// overwrite an archive with a plain PUT, and status and verify, with the reader's keys, name
// the key, the size that differs from the manifest's, the earlier version the bucket kept and
// which version is the archive.
func TestOverwriteWithUploaderKeysIsReported(t *testing.T) {
	k := newKeyed(t)
	key := k.archive("b042", time.Now().Add(-2*time.Hour))
	if code, out := k.w.run(k.readerEnv, "status"); code != ExitOK || !strings.Contains(out, "shop:DATABASE_URL at s3://"+k.w.bucket+"/pgbackups: OK") {
		t.Fatalf("status before the overwrite: exit %d", code)
	}
	if code, _ := k.w.run(k.readerEnv, "verify"); code != ExitOK {
		t.Fatalf("verify before the overwrite: exit %d", code)
	}

	k.put(key, []byte("PGDMP and whatever the key's holder likes"))

	code, out := k.w.run(k.readerEnv, "status")
	for _, want := range []string{"PROBLEM    " + key + " is 41 bytes in the store, its manifest says " + strconv.Itoa(len(k.dump)),
		"PROBLEM    " + key + " was overwritten: the store keeps 1 earlier version of it", "has the manifest's size: it is most likely the archive",
		"PROBLEM    no archive of shop:DATABASE_URL at s3://" + k.w.bucket + "/pgbackups matches its manifest"} {
		if !strings.Contains(out, want) {
			t.Errorf("status after the overwrite lacks %q", want)
		}
	}
	if code != ExitFailed {
		t.Errorf("status after the overwrite: exit %d, want 1", code)
	}
	code, out = k.w.run(k.readerEnv, "verify")
	if code != ExitFailed || !strings.Contains(out, "the archive has 41 bytes, the manifest says") || !strings.Contains(out, key+" was overwritten") {
		t.Errorf("verify after the overwrite: exit %d", code)
	}
}

// Row 3 (and row 5's lone dump): forgeries written with the uploader's keys over a plain PUT do
// not make a target whose backups stopped look healthy; each is a problem named by its key.
func TestForgeriesWithUploaderKeysOnMinIO(t *testing.T) {
	k := newKeyed(t)
	k.archive("b040", time.Now().Add(-75*time.Hour))
	stale := "stale: the newest archive (b040) finished 3d 3h ago"
	if code, out := k.w.run(k.readerEnv, "status"); code != ExitFailed || !strings.Contains(out, stale) {
		t.Fatalf("status of stopped backups: exit %d", code)
	}

	// An empty dump with a fresh time and no manifest.
	lone := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b041", At: time.Now().Add(-10 * time.Minute).UTC()})
	k.put(lone, nil)
	code, out := k.w.run(k.readerEnv, "status")
	if code != ExitFailed || !strings.Contains(out, stale) || !strings.Contains(out, "PROBLEM    "+lone+" has no manifest beside it") {
		t.Errorf("status with a fresh empty dump: exit %d", code)
	}
	// verify takes the newest dump, fails it and says why, before reading it.
	if code, out := k.w.run(k.readerEnv, "verify"); code != ExitFailed || !strings.Contains(out, "no manifest beside the dump") {
		t.Errorf("verify of the lone dump: exit %d", code)
	}

	// A consistent dump and manifest claiming it finished in 2099.
	future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	forged := catalog.Key(catalog.Meta{App: "shop", Database: "DATABASE", Backup: "b043", At: time.Now().Add(-5 * time.Minute).UTC()})
	k.put(forged, k.dump)
	blob, _ := json.Marshal(catalog.Manifest{ManifestVersion: 1, App: "shop", Database: "DATABASE", Backup: "b043",
		BackupFinishedAt: future, Bytes: int64(len(k.dump)), Key: forged})
	k.put(catalog.ManifestKey(forged), blob)
	code, out = k.w.run(k.readerEnv, "status")
	if code != ExitFailed || !strings.Contains(out, stale) ||
		!strings.Contains(out, "PROBLEM    "+forged+": its manifest says the backup finished 2099-01-01 00:00 UTC, in the future") {
		t.Errorf("status with a manifest from 2099: exit %d", code)
	}
}
