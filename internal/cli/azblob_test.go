package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/azstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// A backup to an Azure Blob container (Azurite) with a SAS that may only create blobs, then
// verify and restore from it with a reader's SAS (read, list): the whole path of an azblob://
// destination through the commands, its SAS tokens never in the output.
func TestBackupVerifyRestoreAzureBlob(t *testing.T) {
	w := newWorld(t)
	az := testenv.StartAzurite(t)
	container := az.NewContainer(t)
	w.sim.AddApp("shop")
	addon, _ := w.database("shop", "DATABASE", 2000)
	w.captureDirect(addon, "shop")
	uploader, reader := az.SAS(t, container, "c"), az.SAS(t, container, "rl")
	env := w.env("shop")
	env["ARCHIVE_URL"] = "azblob://" + testenv.AzuriteAccount + "/" + container + "/pgbackups?endpoint=" + az.ServiceURL
	env["AZURE_STORAGE_SAS_TOKEN"] = uploader
	env["BACKUP_MODE"] = "latest"
	run := func(env map[string]string, args ...string) (int, string) {
		t.Helper()
		code, out := w.run(env, args...)
		for _, sas := range []string{uploader, reader} {
			sig := sas[strings.Index(sas, "sig=")+len("sig="):]
			if strings.Contains(out, sig) || strings.Contains(out, strings.ReplaceAll(sig, "%2B", "+")) {
				t.Errorf("pgoffsite %s shows a SAS signature", args[0])
			}
		}
		return code, out
	}
	if code, out := run(env, "backup"); code != ExitOK || !strings.Contains(out, "azblob://") {
		t.Fatalf("backup: exit %d", code)
	}

	// What the container holds, read with the account key: the dump and its manifest.
	st, err := azstore.Open(azstore.Options{Settings: azstore.Settings{Account: testenv.AzuriteAccount, Container: container, Prefix: "pgbackups", Endpoint: az.ServiceURL},
		Credentials: azstore.Credentials{AccountKey: testenv.AzuriteKey}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.List(context.Background(), "shop/")
	if err != nil {
		t.Fatal(err)
	}
	var dump string
	for _, k := range l.Keys() {
		if strings.HasSuffix(k, ".dump") {
			dump = k
		}
	}
	if len(l.Objects) != 2 || dump == "" {
		t.Fatalf("the container holds %v, want a dump and its manifest", l.Keys())
	}

	// The uploader's SAS cannot read back: verify says so and fails.
	if code, out := run(env, "verify"); code == ExitOK || !strings.Contains(out, "may not read and list blobs") {
		t.Errorf("verify with the create-only SAS: exit %d", code)
	}
	readerEnv := withEnv(env, "AZURE_STORAGE_SAS_TOKEN", reader)
	if code, out := run(readerEnv, "verify"); code != ExitOK || !strings.Contains(out, dump) {
		t.Errorf("verify with the reader's SAS: exit %d", code)
	}
	if code, out := run(readerEnv, "status"); code != ExitOK || !strings.Contains(out, "shop:DATABASE_URL at azblob://") {
		t.Errorf("status with the reader's SAS: exit %d", code)
	}
	if code, out := run(readerEnv, "list"); code != ExitOK || !strings.Contains(out, "b001") {
		t.Errorf("list with the reader's SAS: exit %d", code)
	}

	delete(readerEnv, "BACKUP_TARGETS")
	into, intoDSN := w.pg.CreateDB(t, "az_into")
	if code, _ := run(readerEnv, "restore", "--from", dump, "--to", intoDSN); code != ExitOK {
		t.Fatalf("restore: exit %d", code)
	}
	for table, want := range map[string]string{"orders": "2000", "customers": "100"} {
		if got, err := w.pg.Query(into, "SELECT count(*) FROM "+table); err != nil || got != want {
			t.Errorf("restored %s: %q %v, want %s", table, got, err, want)
		}
	}
}
