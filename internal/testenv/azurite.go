package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// AzuriteVersion is the release of Azure Blob Storage's emulator bin/test installs
// (bin/lib/setup.sh, ensure_azurite).
const AzuriteVersion = "3.37.0"

// Azurite's one account and its well-known key, the same in every installation.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a real Azure Blob Storage emulator started for the tests. It enforces the
// permissions of SAS tokens.
type Azurite struct {
	// ServiceURL is the account's blob service URL: http://127.0.0.1:PORT/devstoreaccount1.
	ServiceURL string
	mu         sync.Mutex
	seq        int
}

// azuriteServer is the test binary's one Azurite, started on first use.
var azuriteServer shared[Azurite]

// AzuriteBinary is the emulator's blob server bin/test installs: $PGOFFSITE_AZURITE_BLOB, else
// CacheDir()/azurite/node_modules/.bin/azurite-blob. Without it, or without node to run it, t
// is skipped (failed in CI).
func AzuriteBinary(t testing.TB) string {
	t.Helper()
	bin := envOr("PGOFFSITE_AZURITE_BLOB", filepath.Join(CacheDir(), "azurite", "node_modules", ".bin", "azurite-blob"))
	install := "npm install --prefix " + filepath.Join(CacheDir(), "azurite") + " azurite@" + AzuriteVersion
	if _, err := os.Stat(bin); err != nil {
		missing(t, "Azurite not found at "+bin+" ($PGOFFSITE_AZURITE_BLOB)", install)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node not found on PATH: Azurite needs Node.js", install+", with Node.js installed")
	}
	return bin
}

// StartAzurite returns the test binary's Azurite, starting it on first use.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := AzuriteBinary(t)
	return azuriteServer.get(t, "Azurite", func() (*Azurite, error) { return startAzurite(bin) })
}

func startAzurite(bin string) (*Azurite, error) {
	dir, err := serverDir("azurite")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	// --skipApiVersionCheck: a current SDK speaks a newer API version than the emulator knows.
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(ports[0]),
		"--location", filepath.Join(dir, "data"), "--skipApiVersionCheck", "--silent", "--loose")
	_, err = startUntil(cmd, filepath.Join(dir, "azurite.log"), "listening on "+addr, StartTimeout, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return &Azurite{ServiceURL: "http://" + addr + "/" + AzuriteAccount}, nil
}

// NewContainer creates a fresh container for t, with the account key.
func (a *Azurite) NewContainer(t testing.TB) string {
	t.Helper()
	a.mu.Lock()
	a.seq++
	name := fmt.Sprintf("t%s-%d", randomHex(6), a.seq)
	a.mu.Unlock()
	c, err := container.NewClientWithSharedKeyCredential(a.ServiceURL+"/"+name, a.credential(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("testenv: create container %s: %v", name, err)
	}
	return name
}

// SAS is a SAS token for containerName with the permissions perms spells (Azure's letters:
// "r" read, "c" create, "w" write, "d" delete, "l" list, in that order), valid for an hour.
func (a *Azurite) SAS(t testing.TB, containerName, perms string) string {
	t.Helper()
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
		Permissions:   perms,
		ContainerName: containerName,
	}.SignWithSharedKey(a.credential(t))
	if err != nil {
		t.Fatal(err)
	}
	return q.Encode()
}

func (a *Azurite) credential(t testing.TB) *container.SharedKeyCredential {
	cred, err := container.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
