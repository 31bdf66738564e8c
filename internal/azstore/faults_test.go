package azstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/pgoffsite/pgoffsite/internal/stall"
	"github.com/pgoffsite/pgoffsite/internal/store"
	"github.com/pgoffsite/pgoffsite/internal/store/faulttest"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// The fault suite on Azurite through Toxiproxy, with the account key (Azurite wants write
// permission for staged blocks), blocks of 1 MiB, two in flight: every failed upload says its
// staged blocks are invisible and discarded by Azure within 7 days, and a cancelled one leaves
// exactly that, uncommitted blocks and no blob.
func TestFaults(t *testing.T) {
	uncommitted := func(direct *Store, key string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := direct.c.NewBlockBlobClient(direct.full(key)).GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
		if err != nil {
			return 0
		}
		return len(l.UncommittedBlocks)
	}
	const key = "shop/DATABASE_URL/b001.dump"
	faulttest.Run(t, faulttest.Kind{
		Open: func(t *testing.T) faulttest.Instance {
			az := testenv.StartAzurite(t)
			c := az.NewContainer(t)
			upstream := strings.TrimSuffix(strings.TrimPrefix(az.ServiceURL, "http://"), "/"+testenv.AzuriteAccount)
			p := testenv.StartToxiproxy(t).Proxy(t, upstream)
			st, err := Open(Options{Settings: Settings{Account: testenv.AzuriteAccount, Container: c, Prefix: "pre/fix",
				Endpoint: "http://" + p.Listen + "/" + testenv.AzuriteAccount},
				Credentials: Credentials{AccountKey: testenv.AzuriteKey}, PartSize: testPartSize, Parts: 2,
				Stall: stall.Options{Idle: 500 * time.Millisecond, Header: time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			direct := openAzurite(t, az, c, Credentials{AccountKey: testenv.AzuriteKey}, testPartSize)
			return faulttest.Instance{Store: st, Proxy: p, Direct: direct, Reached: func() bool { return uncommitted(direct, key) > 0 }}
		},
		Size: 6*testPartSize + 123, After: 2 * testPartSize,
		Says: []string{"discards them within 7 days"},
		OpenAt: func(t *testing.T, endpoint string) store.Store {
			st, err := Open(Options{Settings: Settings{Account: "acct", Container: "backups", Endpoint: endpoint + "/acct"},
				Credentials: Credentials{SASToken: "sv=2024&sp=c&sig=c2VjcmV0"}, PartSize: testPartSize, Parts: 2})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		NotTheStore: "did not come from Azure Storage",
		Cancelled: func(t *testing.T, i faulttest.Instance, key string) {
			if n := uncommitted(i.Direct.(*Store), key); n == 0 {
				t.Error("Azurite holds no uncommitted block: the upload was not cancelled mid-way")
			} else {
				t.Logf("left: %d uncommitted blocks, invisible", n)
			}
		},
	})
}
