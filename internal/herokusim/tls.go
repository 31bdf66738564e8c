package herokusim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a throwaway certificate authority and one server certificate it signed for 127.0.0.1,
// ::1 and localhost: real clients (the Heroku CLI refuses plain http for downloads) trust it
// through NODE_EXTRA_CA_CERTS or a cert pool, and trust nothing else of it.
type CA struct {
	PEM    []byte // the CA certificate, PEM-encoded
	Pool   *x509.CertPool
	server tls.Certificate
}

// NewCA makes a CA and a server certificate, both valid from an hour ago for a day.
func NewCA() (*CA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("herokusim: CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "herokusim test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("herokusim: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("herokusim: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("herokusim: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("herokusim: server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &CA{
		PEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Pool:   pool,
		server: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(fmt.Sprintf("herokusim: random: %v", err))
	}
	return n
}

// ServerConfig is the TLS configuration of a server that presents the CA's certificate, over
// HTTP/1.1 only (the storage faults hijack connections, which HTTP/2 cannot).
func (c *CA) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
}

// Client is an HTTP client that trusts the CA only, with a deadline that fits a test's dump.
func (c *CA) Client() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 10 * time.Minute}
}

// WriteFile writes the CA certificate to path (PEM), atomically: a reader never sees half a file.
func (c *CA) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ca-*.pem")
	if err != nil {
		return fmt.Errorf("herokusim: write CA file: %w", err)
	}
	_, err = tmp.Write(c.PEM)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("herokusim: write CA file: %w", err)
	}
	return nil
}

// storagePrefix starts every signed URL's path (the simulated bucket).
const storagePrefix = "/xfrtu/"

// Route names the API a request path belongs to on an origin that serves all three: "data" for
// /client/..., "storage" for the bucket's objects, "platform" for the rest.
func Route(path string) string {
	switch {
	case strings.HasPrefix(path, "/client/"):
		return "data"
	case strings.HasPrefix(path, storagePrefix):
		return "storage"
	}
	return "platform"
}

// Origin serves the three APIs on one origin, by Route: the Heroku CLI sends its Data API calls
// to HEROKU_DATA_HOST with the port and scheme of HEROKU_HOST, so one server must answer both.
func (s *Sim) Origin() http.Handler {
	platform, data, storage := s.Platform(), s.Data(), s.Storage()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch Route(r.URL.Path) {
		case "data":
			data.ServeHTTP(w, r)
		case "storage":
			storage.ServeHTTP(w, r)
		default:
			platform.ServeHTTP(w, r)
		}
	})
}

// ServeTLS serves the three APIs on one HTTPS origin until the test ends (then closes it and the
// Sim), with a new CA whose certificate it writes to a file: signed URLs point at the origin,
// and restores from other URLs trust the CA. It returns the origin's base URL
// (https://127.0.0.1:PORT) and the CA file, for HEROKU_HOST and NODE_EXTRA_CA_CERTS.
func ServeTLS(t testing.TB, s *Sim) (origin, caFile string) {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "herokusim-ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.Origin())
	srv.TLS = ca.ServerConfig()
	srv.StartTLS()
	s.SetStorageURL(srv.URL)
	s.SetFetchClient(ca.Client())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		s.Close()
	})
	return srv.URL, caFile
}
