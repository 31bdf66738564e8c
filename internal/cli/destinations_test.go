package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/catalog"
	"github.com/pgoffsite/pgoffsite/internal/herokusim"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// copies is a world with two more destinations beside the world's MinIO bucket: a second MinIO
// server with credentials of its own (keys=SECOND), and a real OpenSSH server.
type copies struct {
	*world
	second  *testenv.MinIO
	bucket2 string
	sshd    *testenv.SSHD
	sftpDir string // the SFTP destination's directory, on this machine's disk
}

func newCopies(t *testing.T) *copies {
	t.Helper()
	c := &copies{world: newWorld(t), second: testenv.StartOwnMinIO(t), sshd: testenv.StartSSHD(t)}
	c.bucket2 = c.second.CreateBucket(t, "second")
	c.sftpDir = filepath.Join(c.sshd.Root, "archive")
	return c
}

// env sends the archives to all three destinations.
func (c *copies) env(targets string) map[string]string {
	env := c.world.env(targets)
	env["ARCHIVE_URL"] = strings.Join([]string{
		"s3://" + c.bucket + "/pgbackups",
		fmt.Sprintf("s3://%s/copy?endpoint=%s&region=%s&path_style=true&keys=SECOND", c.bucket2, c.second.Endpoint, c.second.Region),
		fmt.Sprintf("sftp://%s@%s:%d%s", c.sshd.User, c.sshd.Host, c.sshd.Port, c.sftpDir),
	}, " ")
	env["SECOND_ACCESS_KEY_ID"] = c.second.AccessKey
	env["SECOND_SECRET_ACCESS_KEY"] = c.second.SecretKey
	env["SFTP_PRIVATE_KEY"] = c.sshd.PrivateKey
	env["SFTP_KNOWN_HOSTS"] = c.sshd.KnownHosts
	return env
}

// noSecrets checks the output for the extra destinations' secrets too.
func (c *copies) noSecrets(out string) {
	c.t.Helper()
	c.assertNoSecrets(out)
	if strings.Contains(out, c.second.SecretKey) {
		c.t.Error("the second provider's secret key appears in the output")
	}
	for _, line := range strings.Split(c.sshd.PrivateKey, "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line) {
			c.t.Error("a line of the SFTP private key appears in the output")
			break
		}
	}
}

func (c *copies) run(env map[string]string, args ...string) (int, string) {
	c.t.Helper()
	code, out := c.world.run(env, args...)
	c.noSecrets(out)
	return code, out
}

// secondObject reads a key of the second MinIO's bucket; nil when it is missing.
func (c *copies) secondObject(key string) []byte {
	out, err := c.second.Client(c.t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(c.bucket2), Key: aws.String(key)})
	if err != nil {
		return nil
	}
	defer out.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(out.Body)
	return b.Bytes()
}

// sftpFiles lists every file under the SFTP destination's directory, hidden ones included.
func (c *copies) sftpFiles() []string {
	var files []string
	filepath.WalkDir(c.sftpDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(c.sftpDir, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

// storageBytes is how many bytes of the backup the job asked the signed URL for, summing its
// ranged GETs.
func storageBytes(t *testing.T, reqs []herokusim.Request, size int64) int64 {
	var n int64
	for _, r := range reqs {
		if r.API != "storage" || r.Method != "GET" {
			continue
		}
		rng := strings.TrimPrefix(r.Header.Get("Range"), "bytes=")
		if rng == "" {
			n += size
			continue
		}
		from, to, _ := strings.Cut(rng, "-")
		a, _ := strconv.ParseInt(from, 10, 64)
		b, err := strconv.ParseInt(to, 10, 64)
		if err != nil || b >= size {
			b = size - 1
		}
		n += b - a + 1
	}
	return n
}

// One backup lands byte-identical on two S3 servers with different credentials and an SFTP
// server, from one download of the backup.
func TestBackupToThreeDestinationsFromOneDownload(t *testing.T) {
	c := newCopies(t)
	c.sim.AddApp("shop")
	addon := c.bigDatabase("shop")
	num := c.captureDirect(addon, "shop")
	env := smallParts(c.env("shop"))
	env["BACKUP_MODE"] = "latest"
	code, out := c.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	want := c.simBackup("shop", num)
	m, dump := c.manifest("shop", "DATABASE")
	c.checkArchive("shop", m, dump)
	if got := c.secondObject("copy/" + m.Key); !bytes.Equal(got, want) {
		t.Errorf("the second S3 server holds %d bytes, want the backup's %d", len(got), len(want))
	}
	sftpCopy, err := os.ReadFile(filepath.Join(c.sftpDir, m.Key))
	if err != nil || !bytes.Equal(sftpCopy, want) {
		t.Errorf("the SFTP server holds %d bytes (%v), want the backup's %d", len(sftpCopy), err, len(want))
	}
	var sftpManifest catalog.Manifest
	if blob, err := os.ReadFile(filepath.Join(c.sftpDir, catalog.ManifestKey(m.Key))); err != nil || json.Unmarshal(blob, &sftpManifest) != nil {
		t.Errorf("no manifest on the SFTP server: %v", err)
	} else if sftpManifest.SHA256 != m.SHA256 || len(sftpManifest.Copies) != 3 {
		t.Errorf("SFTP manifest %s with copies %+v", sftpManifest.SHA256, sftpManifest.Copies)
	}
	for _, cp := range m.Copies {
		if cp.Status != "archived" {
			t.Errorf("manifest copy %+v", cp)
		}
	}
	if got := storageBytes(t, c.sim.Requests(), int64(len(want))); got != int64(len(want)) {
		t.Errorf("the job read %d bytes of the %d-byte backup from its URL: want each byte once", got, len(want))
	}
	if files := c.sftpFiles(); len(files) != 2 {
		t.Errorf("the SFTP directory holds %v, want the dump and its manifest", files)
	}
	if !strings.Contains(out, "copies_stored=") || !strings.Contains(out, "sftp://") {
		t.Error("the summary does not say which copies exist")
	}
}

// A destination that is down fails its copies only: the others complete, the run exits 1, and
// the summary and the webhook name the failed copy.
func TestBackupOneDestinationDown(t *testing.T) {
	for _, down := range []string{"second MinIO stopped", "SSH refused"} {
		t.Run(down, func(t *testing.T) {
			c := newCopies(t)
			c.sim.AddApp("shop")
			c.database("shop", "DATABASE", 500)
			failed := "sftp://"
			if down == "SSH refused" {
				c.sshd.Stop()
			} else {
				c.second.Stop()
				failed = "s3://" + c.bucket2
			}
			monitor, env := c.withMonitor(c.env("shop"), "failure")
			start := time.Now()
			code, out := c.run(env, "backup")
			if code != ExitFailed {
				t.Fatalf("exit %d, want %d", code, ExitFailed)
			}
			if time.Since(start) > 3*time.Minute {
				t.Errorf("took %s", time.Since(start))
			}
			m, dump := c.manifest("shop", "DATABASE")
			c.checkArchive("shop", m, dump)
			if down == "SSH refused" {
				if got := c.secondObject("copy/" + m.Key); !bytes.Equal(got, dump) {
					t.Error("the second S3 copy is missing")
				}
				if files := c.sftpFiles(); len(files) != 0 {
					t.Errorf("the SFTP directory holds %v", files)
				}
			} else if got, err := os.ReadFile(filepath.Join(c.sftpDir, m.Key)); err != nil || !bytes.Equal(got, dump) {
				t.Errorf("the SFTP copy is missing: %v", err)
			}
			statuses := map[string]string{}
			for _, cp := range m.Copies {
				statuses[cp.Destination] = cp.Status
			}
			for dest, status := range statuses {
				if strings.HasPrefix(dest, failed) != (status == "failed") {
					t.Errorf("manifest says %s: %s", dest, status)
				}
			}
			if !strings.Contains(out, "summary: FAILED") || !strings.Contains(out, "copies_failed=") || !strings.Contains(out, "copies_stored=") {
				t.Error("the summary does not say which copy failed and which exist")
			}
			var hook struct {
				Targets []struct {
					Error  string
					Copies []struct{ Destination, Status, Location string }
				}
			}
			if err := json.Unmarshal([]byte(monitor.Bodies()["/hook"]), &hook); err != nil || len(hook.Targets) != 1 {
				t.Fatalf("webhook: %v %s", err, monitor.Bodies()["/hook"])
			}
			nFailed := 0
			for _, cp := range hook.Targets[0].Copies {
				if cp.Status == "failed" {
					nFailed++
					if !strings.HasPrefix(cp.Destination, failed) {
						t.Errorf("the webhook says %s failed", cp.Destination)
					}
				} else if cp.Location == "" {
					t.Errorf("the webhook gives no location of the copy at %s", cp.Destination)
				}
			}
			if nFailed != 1 || len(hook.Targets[0].Copies) != 3 {
				t.Errorf("webhook copies: %+v", hook.Targets[0].Copies)
			}
		})
	}
}

// A server whose host key is not the pinned one is refused before anything is sent to it.
func TestBackupWrongSFTPHostKey(t *testing.T) {
	c := newCopies(t)
	c.sim.AddApp("shop")
	c.database("shop", "DATABASE", 200)
	env := c.env("shop")
	env["SFTP_KNOWN_HOSTS"] = c.sshd.OtherKnownHosts(t)
	code, out := c.run(env, "backup")
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	if !strings.Contains(out, "presented the host key") {
		t.Error("the log does not say the host key did not match")
	}
	if files := c.sftpFiles(); len(files) != 0 {
		t.Errorf("files were written to the refused server: %v", files)
	}
	m, dump := c.manifest("shop", "DATABASE")
	c.checkArchive("shop", m, dump)
}

// SIGTERM mid-upload with three destinations: nothing visible anywhere, no open multipart
// upload on either S3 server, no temporary file on the SFTP server, exit 143 within 20 s.
func TestBackupSIGTERMWithThreeDestinations(t *testing.T) {
	c := newCopies(t)
	c.sim.AddApp("shop")
	addon := c.bigDatabase("shop")
	c.captureDirect(addon, "shop")
	x := testenv.StartToxiproxy(t)
	proxy := x.Proxy(t, strings.TrimPrefix(c.minio.Endpoint, "http://"))
	proxy.AddToxic(t, "bandwidth", "upstream", map[string]any{"rate": 2000}) // ~12 s for the dump
	env := smallParts(c.env("shop"))
	env["BACKUP_MODE"] = "latest"
	env["AWS_ENDPOINT_URL_S3"] = "http://" + proxy.Listen
	cmd, out := startBinary(t, env, "backup")
	if !c.waitUploadUnderWay(60 * time.Second) {
		t.Error("no multipart upload was opened within 60 s")
	}
	// The SFTP copy is under way too: its temporary file exists.
	for deadline := time.Now().Add(30 * time.Second); len(c.sftpFiles()) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	if len(c.sftpFiles()) == 0 {
		t.Error("the SFTP upload did not start")
	}
	stopped := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	elapsed := time.Since(stopped)
	t.Logf("output:\n%s", out.String())
	c.noSecrets(out.String())
	if code := cmd.ProcessState.ExitCode(); code != ExitTerminated {
		t.Errorf("exit %d (%v), want %d", code, err, ExitTerminated)
	}
	if elapsed > 20*time.Second {
		t.Errorf("took %s to stop, want under 20 s", elapsed)
	}
	if keys := c.keys(); len(keys) != 0 {
		t.Errorf("objects left on the first S3 server: %v", keys)
	}
	if n := len(c.openUploads()); n != 0 {
		t.Errorf("%d incomplete multipart uploads left on the first S3 server", n)
	}
	list, err := c.second.Client(t).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket2)})
	if err != nil || len(list.Contents) != 0 {
		t.Errorf("objects left on the second S3 server: %v %v", err, list)
	}
	if ids := c.second.IncompleteUploads(t, c.bucket2); len(ids) != 0 {
		t.Errorf("%d incomplete multipart uploads left on the second S3 server", len(ids))
	}
	if files := c.sftpFiles(); len(files) != 0 {
		t.Errorf("files left on the SFTP server: %v", files)
	}
}

// With ARCHIVE_RECIPIENTS every destination receives the same age ciphertext: the real age
// command decrypts the SFTP copy to the exact backup; verify passes with the identity at each
// destination, fails with another identity and on a flipped ciphertext byte; and the backup
// refuses to run with an identity in its environment.
func TestBackupEncryptedToThreeDestinations(t *testing.T) {
	c := newCopies(t)
	c.sim.AddApp("shop")
	addon, _ := c.database("shop", "DATABASE", 2000)
	num := c.captureDirect(addon, "shop")
	key := newAgeKey(t)
	env := c.env("shop")
	env["BACKUP_MODE"] = "latest"
	env["ARCHIVE_RECIPIENTS"] = key.recipient

	// The dyno never holds an identity: a backup with one set does nothing.
	withID := withEnv(env, "AGE_IDENTITY", key.text)
	if code, out := c.run(withID, "backup"); code != ExitUsage || !strings.Contains(out, "AGE_IDENTITY") {
		t.Fatalf("backup with AGE_IDENTITY set: exit %d, want %d naming the variable", code, ExitUsage)
	} else {
		key.assertNoKey(t, out)
	}
	if keys := c.keys(); len(keys) != 0 {
		t.Fatalf("objects written: %v", keys)
	}

	code, out := c.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "encrypted_to=") {
		t.Error("the run does not say what it encrypts to")
	}
	want := c.simBackup("shop", num)
	var dumpKey string
	for _, k := range c.keys() {
		if strings.HasSuffix(k, ".dump.age") {
			dumpKey = strings.TrimPrefix(k, "pgbackups/")
		}
	}
	if dumpKey == "" {
		t.Fatalf("no .dump.age in %v", c.keys())
	}
	stored := c.object("pgbackups/" + dumpKey)
	if bytes.HasPrefix(stored, []byte("PGDMP")) || bytes.Contains(stored, want[len(want)-64:]) {
		t.Fatal("the stored object holds plaintext")
	}
	if got := c.secondObject("copy/" + dumpKey); !bytes.Equal(got, stored) {
		t.Error("the second S3 copy differs")
	}
	sftpPath := filepath.Join(c.sftpDir, dumpKey)
	if got, err := os.ReadFile(sftpPath); err != nil || !bytes.Equal(got, stored) {
		t.Errorf("the SFTP copy differs: %v", err)
	}
	var m catalog.Manifest
	if err := json.Unmarshal(c.object("pgbackups/"+catalog.ManifestKey(dumpKey)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Encryption == nil || m.Encryption.Recipients[0].Public != key.recipient || m.Encryption.PlaintextBytes != int64(len(want)) {
		t.Errorf("manifest encryption = %+v", m.Encryption)
	}

	// The real age decrypts the copy to the exact backup.
	age, _ := testenv.AgeBinary(t)
	plain, err := exec.Command(age, "-d", "-i", key.file, sftpPath).Output()
	if err != nil || !bytes.Equal(plain, want) {
		t.Fatalf("age -d: %v; %d bytes, want the backup's %d", err, len(plain), len(want))
	}

	verifyEnv := c.env("shop")
	delete(verifyEnv, "HEROKU_API_KEY")
	for _, dest := range []string{"1", "2", "3"} {
		code, out := c.run(withEnv(verifyEnv, "AGE_IDENTITY", key.text), "verify", "--destination", dest)
		if code != ExitOK {
			t.Errorf("verify --destination %s with the identity: exit %d", dest, code)
		}
		key.assertNoKey(t, out)
	}
	other := newAgeKey(t)
	if code, out := c.run(withEnv(verifyEnv, "AGE_IDENTITY", other.text), "verify", "--destination", "3"); code != ExitFailed ||
		!strings.Contains(out, "identity") {
		t.Errorf("verify with another identity: exit %d", code)
	}
	// A flipped ciphertext byte on the SFTP server fails the verification there.
	flipped := bytes.Clone(stored)
	flipped[len(flipped)/2] ^= 0x01
	if err := os.WriteFile(sftpPath, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.run(withEnv(verifyEnv, "AGE_IDENTITY", key.text), "verify", "--destination", "3"); code != ExitFailed {
		t.Errorf("verify of a flipped ciphertext: exit %d, want %d", code, ExitFailed)
	}
}

// When no destination can be opened the run takes no backup: a capture would cost the database
// for nothing.
func TestBackupNoDestinationOpens(t *testing.T) {
	c := newCopies(t)
	c.sim.AddApp("shop")
	c.database("shop", "DATABASE", 100)
	env := c.env("shop")
	env["ARCHIVE_URL"] = fmt.Sprintf("sftp://%s@%s:%d%s", c.sshd.User, c.sshd.Host, c.sshd.Port, c.sftpDir)
	c.sshd.Stop()
	code, out := c.run(env, "backup")
	if code != ExitFailed || !strings.Contains(out, "no destination could be opened") {
		t.Fatalf("exit %d, want %d saying no destination could be opened", code, ExitFailed)
	}
	for _, r := range c.sim.Requests() {
		if r.API == "data" && r.Method == "POST" {
			t.Errorf("a backup was asked for: %s %s", r.Method, r.Path)
		}
	}
}
