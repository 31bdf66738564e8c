package bucket

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/madmin-go/v3"

	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// extraMinIO is a MinIO server of this test's own, beside the shared one
// from testenv: a remote tier target, or a TLS endpoint (the uploader and
// reader policies only allow requests made over TLS).
type extraMinIO struct {
	Endpoint             string // http(s)://127.0.0.1:PORT
	AccessKey, SecretKey string
	pool                 *x509.CertPool // trusted roots when TLS
}

// startExtraMinIO starts a MinIO with the binary testenv uses, stopped when
// t ends.
func startExtraMinIO(t *testing.T, withTLS bool) *extraMinIO {
	t.Helper()
	bin := testenv.MinIOBinary(t)
	dir := t.TempDir()
	m := &extraMinIO{AccessKey: "extraadmin", SecretKey: "extraadmin-secret-" + randHex(8)}
	port, consolePort := freePort(t), freePort(t)
	args := []string{"server", filepath.Join(dir, "data"), "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort)}
	scheme := "http"
	if withTLS {
		certs := filepath.Join(dir, "certs")
		m.pool = writeSelfSigned(t, certs)
		args = append(args, "--certs-dir", certs)
		scheme = "https"
	}
	m.Endpoint = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)

	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	log, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Dies with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start extra minio: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})

	if err := testenv.WaitMinIOReady(m.Endpoint, m.AccessKey, m.SecretKey, m.transport(), testenv.StartTimeout); err != nil {
		out, _ := os.ReadFile(log.Name())
		t.Fatalf("extra minio: %v\n%s", err, out)
	}
	return m
}

func (m *extraMinIO) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if m.pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: m.pool}
	}
	return tr
}

// Client is an S3 client with the given credentials.
func (m *extraMinIO) Client(accessKey, secretKey string) *s3.Client {
	return s3Client(m.Endpoint, "us-east-1", accessKey, secretKey, awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if m.pool != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: m.pool}
		}
	}))
}

func (m *extraMinIO) Admin(t *testing.T) *madmin.AdminClient {
	return adminClient(t, m.Endpoint, m.AccessKey, m.SecretKey, m.transport())
}

func adminClient(t *testing.T, endpoint, ak, sk string, tr http.RoundTripper) *madmin.AdminClient {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	adm, err := madmin.New(host, ak, sk, strings.HasPrefix(endpoint, "https://"))
	if err != nil {
		t.Fatalf("admin client for %s: %v", endpoint, err)
	}
	if tr != nil {
		adm.SetCustomTransport(tr)
	}
	return adm
}

func s3Client(endpoint, region, ak, sk string, hc aws.HTTPClient) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
		HTTPClient:   hc,
	})
}

// addUser creates a user on the server holding exactly the policy doc.
func addUser(t *testing.T, adm *madmin.AdminClient, name string, doc []byte) (accessKey, secretKey string) {
	t.Helper()
	ctx := context.Background()
	accessKey, secretKey = name+randHex(4), "secret-"+randHex(12)
	if err := adm.AddCannedPolicy(ctx, accessKey, doc); err != nil {
		t.Fatalf("add policy %s: %v\n%s", name, err, doc)
	}
	if err := adm.AddUser(ctx, accessKey, secretKey); err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{accessKey}, User: accessKey}); err != nil {
		t.Fatalf("attach policy to %s: %v", name, err)
	}
	return accessKey, secretKey
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeSelfSigned writes public.crt and private.key for 127.0.0.1 into dir
// and returns a pool trusting it.
func writeSelfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}
