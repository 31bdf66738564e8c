package cli

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
)

// Against a store that refuses S3's checksum headers as Cloudflare R2 does (MinIO behind a
// proxy answering 501 NotImplemented), a destination without checksum= falls back to Content-MD5
// once, warns once naming the parameter, and the archive verifies; with checksum=sha256 the
// backup fails naming it.
func TestBackupChecksumRefusingStore(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 5000)
	proxy := s3errtest.RefuseChecksums(t, w.minio.Endpoint, s3errtest.R2Refusal)
	env := w.env("shop")
	env["AWS_ENDPOINT_URL_S3"] = proxy.URL

	code, out := w.run(env, "backup")
	if code != ExitOK {
		t.Fatalf("backup with checksum=auto against a store refusing the checksum headers: exit %d", code)
	}
	if n := strings.Count(out, s3store.ChecksumRefusedMessage); n != 1 || !strings.Contains(out, "checksum=md5") {
		t.Errorf("want exactly one warning naming checksum=md5, got %d", n)
	}
	if proxy.Refused() == 0 {
		t.Error("the stand-in refused nothing: the test cannot tell a fallback from none")
	}
	m, dump := w.manifest("shop", "DATABASE")
	w.checkArchive("shop", m, dump)

	venv := w.env("shop")
	venv["AWS_ENDPOINT_URL_S3"] = proxy.URL
	delete(venv, "HEROKU_API_KEY")
	refused := proxy.Refused()
	if code, _ := w.run(venv, "verify"); code != ExitOK {
		t.Fatalf("verify through the stand-in: exit %d", code)
	}
	if proxy.Refused() != refused {
		t.Error("verify sent checksum headers to a destination that refuses them")
	}

	env["ARCHIVE_URL"] = "s3://" + w.bucket + "/strict?checksum=sha256"
	code, out = w.run(env, "backup")
	if code == ExitOK || !strings.Contains(out, "checksum=sha256") || !strings.Contains(out, "set checksum=md5") {
		t.Errorf("backup with checksum=sha256 against a store refusing it: exit %d, want a failure naming checksum=sha256 and the fix", code)
	}
}
