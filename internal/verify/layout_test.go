package verify

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// layoutV1 is an archive as the job wrote it before sources were separate (no origin block in
// the manifest): found by Latest and verified as it is.
const layoutV1 = "testdata/layout-v1"

func TestVerifiesArchivesOfTheFirstLayout(t *testing.T) {
	s := newStore(t)
	err := filepath.WalkDir(layoutV1, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(layoutV1, p)
		put(t, s, filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = "shop/DATABASE/2026/11/23/shop-DATABASE-b042-20261123T020304Z.dump"
	for _, name := range []string{"DATABASE_URL", "postgresql-x-1"} {
		k, err := Latest(context.Background(), s, "shop", name)
		if err != nil || k != want {
			t.Fatalf("Latest(shop, %s) = %q, %v; want %q", name, k, err, want)
		}
	}
	res := Archive(context.Background(), s, want, Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Manifest.Backup != "b042" || res.Manifest.TransferUUID != "u-1" || res.Manifest.Origin != nil || res.Tables == 0 {
		t.Errorf("manifest %+v, %d tables", res.Manifest, res.Tables)
	}
}
