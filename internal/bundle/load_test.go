package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pgoffsite/pgoffsite/internal/agecrypt"
)

// objects is an archive in memory.
type objects map[string][]byte

func (o objects) Open(_ context.Context, key string) (io.ReadCloser, int64, error) {
	b, ok := o[key]
	if !ok {
		return nil, 0, os.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// archived is a bundle as bundle writes it: slug, config values sealed with sign and encrypted,
// release.json signed with sign.
func archived(t *testing.T, sign SigningKey, values map[string]string) (objects, Record, *agecrypt.Identities) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recips, err := agecrypt.ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agecrypt.ParseIdentities(id.String())
	if err != nil {
		t.Fatal(err)
	}
	slug := bytes.Repeat([]byte("slug bytes "), 1000)
	sum := sha256.Sum256(slug)
	rec := record()
	rec.Slug.Bytes, rec.Slug.Checksum = int64(len(slug)), "SHA256:"+hex.EncodeToString(sum[:])
	plain, err := SealValues(rec, values, sign)
	if err != nil {
		t.Fatal(err)
	}
	enc, _, err := recips.EncryptReader(bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := io.ReadAll(enc)
	if err := rec.Sign(sign); err != nil {
		t.Fatal(err)
	}
	blob, _ := json.MarshalIndent(rec, "", "  ")
	return objects{rec.Slug.Key: slug, rec.ConfigValues.Key: ct, Key("shop", 42, ReleaseName): blob}, rec, ids
}

func TestLoad(t *testing.T) {
	k, _ := newKey(t)
	values := map[string]string{"SECRET": "sk_live_1"}
	src, _, ids := archived(t, k, values)
	from := Key("shop", 42, ReleaseName)
	l, err := Load(context.Background(), src, from, Checks{Identities: ids, VerifyKey: k.Public()})
	if err != nil || l.Trust != Verified || !reflect.DeepEqual(l.Values, values) || l.Unbound {
		t.Fatalf("a signed bundle: %+v, %v", l, err)
	}
	if l, err := Load(context.Background(), src, from, Checks{Identities: ids}); err != nil || l.Trust != SignedUnchecked {
		t.Errorf("without a verify key: %v %v", l, err)
	}
	if _, err := Load(context.Background(), src, from, Checks{}); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("without an identity: %v", err)
	}
	if _, err := Load(context.Background(), src, "shop/_app/v042/release.json", Checks{Identities: ids}); !errors.Is(err, ErrNotReleaseKey) {
		t.Errorf("a key with a leading zero: %v", err)
	}
	// The same release.json at another release's key describes another release.
	moved := objects{}
	for k, v := range src {
		moved[k] = v
	}
	moved[Key("shop", 43, ReleaseName)] = src[from]
	if _, err := Load(context.Background(), moved, Key("shop", 43, ReleaseName), Checks{Identities: ids}); err == nil ||
		!strings.Contains(err.Error(), "it describes shop v42, not the release its key names (shop v43)") {
		t.Errorf("release.json under another release: %v", err)
	}
	// The slug's bytes are checked before anything is made of the bundle.
	bad := objects{}
	for k, v := range src {
		bad[k] = v
	}
	slug := append([]byte(nil), src[Key("shop", 40, SlugName)]...)
	slug[len(slug)/2] ^= 1
	bad[Key("shop", 40, SlugName)] = slug
	if _, err := Load(context.Background(), bad, from, Checks{Identities: ids}); !errors.Is(err, ErrSlugMismatch) {
		t.Errorf("a changed slug: %v", err)
	}
}

// The layout: each part under the bundle's own APP/_app/vN/, the slug under it or an earlier
// release's; every problem is named.
func TestCheckLayout(t *testing.T) {
	cases := map[string]struct {
		change func(*Record)
		want   string
	}{
		"newer":           {func(r *Record) { r.BundleVersion = 3 }, "bundle_version 3 is newer than this pgoffsite reads (2)"},
		"not a bundle":    {func(r *Record) { r.BundleVersion = 0 }, "not a bundle's release.json"},
		"other app":       {func(r *Record) { r.App = "other" }, "it describes other v42"},
		"config of v3":    {func(r *Record) { r.ConfigValues.Key = Key("shop", 3, ConfigName) }, "config values are at shop/_app/v3/config.age, not at the bundle's own shop/_app/v42/config.age"},
		"config outside":  {func(r *Record) { r.ConfigValues.Key = "../other/config.age" }, "config values are at ../other/config.age"},
		"later slug":      {func(r *Record) { r.Slug.FromRelease, r.Slug.Key = 50, Key("shop", 50, SlugName) }, "slug comes from release v50, which is not this one nor an earlier one"},
		"slug elsewhere":  {func(r *Record) { r.Slug.Key = "evil/_app/v1/slug.tgz" }, "slug is at evil/_app/v1/slug.tgz, not at shop/_app/v40/slug.tgz"},
		"checksum":        {func(r *Record) { r.Slug.Checksum = "MD5:abc" }, `slug's checksum "MD5:abc" is not SHA256:<64 hex digits>`},
		"empty slug":      {func(r *Record) { r.Slug.Bytes = 0 }, "slug's size 0 is not one of a slug"},
		"v1 is still one": {func(r *Record) { r.BundleVersion = 1 }, ""},
	}
	for name, c := range cases {
		r := record()
		c.change(&r)
		err := r.checkLayout("shop", 42)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// The slug reader never gives its last byte unless the whole slug is the one recorded, so a PUT
// that reads it cannot complete with other bytes.
func TestCheckedSlug(t *testing.T) {
	slug := bytes.Repeat([]byte("0123456789"), 5000)
	sum := sha256.Sum256(slug)
	s := &Slug{Key: "shop/_app/v1/slug.tgz", Bytes: int64(len(slug)), Checksum: "SHA256:" + hex.EncodeToString(sum[:])}
	read := func(body []byte) (int, error) {
		rc, err := openSlug(context.Background(), unsized{body}, s)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		return int(n), err
	}
	if n, err := read(slug); err != nil || n != len(slug) {
		t.Errorf("the recorded slug: %d bytes, %v", n, err)
	}
	flipped := append([]byte(nil), slug...)
	flipped[100] ^= 1
	long := append(append([]byte(nil), slug...), 'x')
	for name, body := range map[string][]byte{"changed": flipped, "short": slug[:len(slug)-1], "long": long} {
		n, err := read(body)
		if !errors.Is(err, ErrSlugMismatch) || n >= len(slug) {
			t.Errorf("%s: %d bytes given, %v; want fewer than %d and a mismatch", name, n, err, len(slug))
		}
	}
}

// unsized is an archive that does not know an object's size before reading it (as a stream).
type unsized struct{ b []byte }

func (u unsized) Open(context.Context, string) (io.ReadCloser, int64, error) {
	return io.NopCloser(bytes.NewReader(u.b)), -1, nil
}
