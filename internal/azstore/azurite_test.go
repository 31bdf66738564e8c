package azstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/store/storetest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testPartSize makes the suite's large object several blocks, staged in parallel.
const testPartSize = 1 << 20

// openAzurite opens a fresh container's prefix with creds.
func openAzurite(t *testing.T, az *testenv.Azurite, container string, creds Credentials, partSize int64) *Store {
	t.Helper()
	st, err := Open(Options{Settings: Settings{Account: testenv.AzuriteAccount, Container: container, Prefix: "pre/fix", Endpoint: az.ServiceURL},
		Credentials: creds, PartSize: partSize, Parts: 3})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// With the account key the store may do everything: read, keep records, delete.
func TestAzuriteConformanceAccountKey(t *testing.T) {
	az := testenv.StartAzurite(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			st := openAzurite(t, az, az.NewContainer(t), Credentials{AccountKey: testenv.AzuriteKey}, testPartSize)
			return storetest.Instance{Store: st, Caps: st.Caps(), Reader: st}
		},
		Want: storetest.Want{Reader: true, Records: true, Remove: true},
	})
}

// The write-only uploader: a SAS with create permission alone writes every archive, declares
// nothing else, and is read back with a reader's SAS (read, list). Azurite takes a Put Blob with
// create permission but wants write permission for staged blocks (Azure documents create as
// enough for a new blob's blocks): the parts here hold the suite's largest object.
func TestAzuriteConformanceCreateOnlySAS(t *testing.T) {
	az := testenv.StartAzurite(t)
	storetest.Run(t, storetest.Kind{
		Open: func(t *testing.T) storetest.Instance {
			c := az.NewContainer(t)
			st := openAzurite(t, az, c, Credentials{SASToken: az.SAS(t, c, "c")}, 4<<20)
			reader := openAzurite(t, az, c, Credentials{SASToken: az.SAS(t, c, "rl")}, testPartSize)
			return storetest.Instance{Store: st, Caps: st.Caps(), Reader: reader}
		},
		Want: storetest.Want{},
	})
}

// What makes the uploader write-only: its SAS (create alone) writes a new blob and cannot read,
// list, delete or overwrite it, and declares none of those.
func TestAzuriteCreateOnlySASCannotReadListDeleteOrOverwrite(t *testing.T) {
	az := testenv.StartAzurite(t)
	c := az.NewContainer(t)
	sas := az.SAS(t, c, "c")
	up := openAzurite(t, az, c, Credentials{SASToken: sas}, testPartSize)
	ctx := context.Background()
	const key = "shop/DATABASE_URL/b001.dump"
	if err := up.Put(ctx, store.Object{Key: key, Size: 5}, strings.NewReader("first")); err != nil {
		t.Fatalf("create-only Put: %v", err)
	}
	if caps := up.Caps(); caps.Reader != nil || caps.Records != nil || caps.Remove != nil {
		t.Errorf("a create-only SAS declares %+v", caps)
	}
	// The store's own methods, called despite the caps, are refused by Azure.
	if rc, _, err := up.Open(ctx, key); err == nil {
		rc.Close()
		t.Error("read succeeded")
	} else if !strings.Contains(err.Error(), "AuthorizationPermissionMismatch") {
		t.Errorf("read: %v", err)
	}
	if _, err := up.List(ctx, ""); err == nil {
		t.Error("list succeeded")
	}
	if err := up.Remove(ctx, key); err == nil {
		t.Error("delete succeeded")
	}
	if err := up.Replace(ctx, key, []byte("second")); err == nil {
		t.Error("overwrite (Put Blob without a condition) succeeded")
	}
	if err := up.Put(ctx, store.Object{Key: key, Size: 6}, strings.NewReader("second")); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Put: %v, want ErrExists", err)
	}
	for _, e := range []error{func() error { _, err := up.List(ctx, ""); return err }(), up.Remove(ctx, key)} {
		if e != nil && strings.Contains(e.Error(), "sig=") {
			t.Errorf("an error shows the signature: %v", e)
		}
	}
	reader := openAzurite(t, az, c, Credentials{SASToken: az.SAS(t, c, "rl")}, testPartSize)
	rc, _, err := reader.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "first" {
		t.Errorf("the blob holds %q", b)
	}
	if caps := reader.Caps(); caps.Reader == nil || caps.Records != nil || caps.Remove != nil {
		t.Errorf("a reader SAS declares %+v", caps)
	}
}

// A failed call never shows the SAS token, which travels in every request's URL: here the
// network error of a server that is gone, which Go's HTTP client reports with the URL.
func TestErrorsNeverShowTheSASToken(t *testing.T) {
	const token = "sv=2024-08-04&sp=c&sr=c&sig=c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ%3D%3D"
	port := testenv.FreePort(t)
	st, err := Open(Options{Settings: Settings{Account: "acct", Container: "backups", Endpoint: fmt.Sprintf("http://127.0.0.1:%d/acct", port)},
		Credentials: Credentials{SASToken: token}, PartSize: testPartSize, Parts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = st.Put(ctx, store.Object{Key: "k", Size: 3}, strings.NewReader("abc"))
	if err == nil {
		t.Fatal("Put to a closed port succeeded")
	}
	for _, secret := range []string{"c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ", "sig="} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "put azblob://acct/backups/k") {
		t.Errorf("error does not say what failed: %v", err)
	}
}

// checker records a preflight's lines.
type checker struct{ lines []string }

func (c *checker) OK(f string, a ...any)   { c.lines = append(c.lines, "OK "+fmt.Sprintf(f, a...)) }
func (c *checker) Warn(f string, a ...any) { c.lines = append(c.lines, "WARN "+fmt.Sprintf(f, a...)) }
func (c *checker) Fail(f string, a ...any) { c.lines = append(c.lines, "FAIL "+fmt.Sprintf(f, a...)) }
func (c *checker) Fix(f string, a ...any)  { c.lines = append(c.lines, "FIX "+fmt.Sprintf(f, a...)) }

// check writes the probe as a large archive is written, in blocks committed as a block list.
// Azurite refuses blocks to a create-only SAS (Azure documents create as enough), so there check
// says so and how to fix it; a SAS that may also write, or the account key, writes but is warned
// about; a reader's SAS cannot write, and the failure says which permission is missing.
func TestAzuriteCheck(t *testing.T) {
	az := testenv.StartAzurite(t)
	c := az.NewContainer(t)
	a := Settings{Account: testenv.AzuriteAccount, Container: c, Endpoint: az.ServiceURL, Keys: "AZ"}.Archive()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"create-only SAS", map[string]string{"AZ_SAS_TOKEN": az.SAS(t, c, "c")}, []string{"FAIL archive " + a.String() + " is not writable: the SAS in AZ_SAS_TOKEN may create blobs, but staging a block with it was refused",
			"FIX make the uploader's SAS with `az storage container generate-sas --account-name devstoreaccount1 --name " + c + " --permissions cw "}},
		{"create and write SAS", map[string]string{"AZ_SAS_TOKEN": az.SAS(t, c, "cw")}, []string{"OK archive is writable", "WARN", "FIX give the uploader a SAS with create permission only"}},
		{"account key", map[string]string{"AZ_ACCOUNT_KEY": testenv.AzuriteKey}, []string{"OK archive is writable", "WARN", "FIX give the uploader a SAS with create permission only"}},
		{"reader SAS", map[string]string{"AZ_SAS_TOKEN": az.SAS(t, c, "rl")}, []string{"FAIL archive " + a.String() + " is not writable", "backup needs create (c)"}},
	} {
		var r checker
		env := spec.Env{Getenv: func(k string) string { return tc.vars[k] }}
		Kind.Check(context.Background(), &r, env, []spec.Archive{a}, 0)
		all := strings.Join(r.lines, "\n")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: check says\n%s\nwant %q", tc.name, all, w)
			}
		}
		if strings.Contains(all, "sig=") {
			t.Errorf("%s: check shows a signature", tc.name)
		}
	}
}

// RETENTION's class is the blob's index tag, set in the request that makes the blob visible:
// by the create-only SAS on a one-part archive (Azurite takes the tag with create alone), and
// on the commit of a block list (with the account key: Azurite wants write permission for
// blocks).
func TestAzuriteRetentionClassIsABlobIndexTag(t *testing.T) {
	az := testenv.StartAzurite(t)
	c := az.NewContainer(t)
	admin := openAzurite(t, az, c, Credentials{AccountKey: testenv.AzuriteKey}, testPartSize)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		st   *Store
		size int
	}{
		{"create-only SAS, one part", openAzurite(t, az, c, Credentials{SASToken: az.SAS(t, c, "c")}, testPartSize), 1000},
		{"account key, three blocks", admin, 3*testPartSize - 5},
	} {
		key := "shop/DATABASE_URL/" + strings.ReplaceAll(tc.name, " ", "-") + ".dump"
		obj := store.Object{Key: key, Size: int64(tc.size), Tags: map[string]string{"retention": "monthly"}}
		if err := tc.st.Put(ctx, obj, strings.NewReader(strings.Repeat("x", tc.size))); err != nil {
			t.Fatalf("%s: Put: %v", tc.name, err)
		}
		tags, err := admin.c.NewBlobClient(admin.full(key)).GetTags(ctx, nil)
		if err != nil {
			t.Fatalf("%s: GetTags: %v", tc.name, err)
		}
		got := map[string]string{}
		for _, tg := range tags.BlobTagSet {
			got[*tg.Key] = *tg.Value
		}
		if len(got) != 1 || got["retention"] != "monthly" {
			t.Errorf("%s: the blob's tags are %v, want retention=monthly", tc.name, got)
		}
	}
}

// With RETENTION, check says that expiring archives is the lifecycle policy's job and where it
// comes from.
func TestAzuriteCheckWithRetention(t *testing.T) {
	az := testenv.StartAzurite(t)
	c := az.NewContainer(t)
	a := Settings{Account: testenv.AzuriteAccount, Container: c, Endpoint: az.ServiceURL}.Archive()
	p, err := retention.Parse("daily=7d monthly=12m")
	if err != nil {
		t.Fatal(err)
	}
	var r checker
	Kind.Check(context.Background(), &r, spec.Env{Retention: p, Getenv: func(k string) string {
		return map[string]string{AccountKeyVar: testenv.AzuriteKey}[k]
	}}, []spec.Archive{a}, 0)
	all := strings.Join(r.lines, "\n")
	for _, w := range []string{"WARN archive " + a.String() + ": RETENTION: each archive carries its class as the blob index tag", "FIX apply the lifecycle policy `pgoffsite setup-bucket` prints"} {
		if !strings.Contains(all, w) {
			t.Errorf("check says\n%s\nwant %q", all, w)
		}
	}
}
