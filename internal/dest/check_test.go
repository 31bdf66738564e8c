package dest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/preflight/preflighttest"

	"github.com/pgoffsite/pgoffsite/internal/bucket"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/filestore"
	"github.com/pgoffsite/pgoffsite/internal/retention"
	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
	"github.com/pgoffsite/pgoffsite/internal/s3store"
	"github.com/pgoffsite/pgoffsite/internal/sftpstore"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

// lackingProvider stands in front of a real MinIO as an S3-compatible provider without
// conditional writes, versioning, Object Lock or lifecycle rules: it answers those requests 501
// NotImplemented, the way such providers do, and passes everything else on.
func lackingProvider(t *testing.T, minioEndpoint string) string {
	t.Helper()
	target, err := url.Parse(minioEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the signed Host header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Header.Get("If-None-Match") != "" || q.Has("versioning") || q.Has("object-lock") || q.Has("lifecycle") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header or query you provided implies functionality that is not implemented.</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheckEveryDestination: the preflight probes every destination — an S3 bucket on a second provider
// reached with its own endpoint and keys while the AWS variables point elsewhere, a provider
// lacking the safety features, a directory, an SFTP server — and names the destination in
// every line it prints about one.
func TestCheckEveryDestination(t *testing.T) {
	m := testenv.StartMinIO(t)
	full := m.CreateBucket(t, "check-full")
	lacking := m.CreateBucket(t, "check-lacking")
	// What the AWS SDK reads itself.
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	// The default chain names a closed port and keys MinIO does not know.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("AWS_ENDPOINT_URL_S3", closed)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAWRONG")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	dir := t.TempDir()
	sshd := testenv.StartSSHD(t)
	sftpDest := sftpstore.Settings{User: sshd.User, Host: sshd.Host, Port: sshd.Port, Dir: sshd.Root, KeyVar: "SFTP_PRIVATE_KEY"}.Archive()

	vars := map[string]string{"AWS_REGION": "eu-west-1", "S3_STORAGE_CLASS": "STANDARD", "AWS_ENDPOINT_URL_S3": closed,
		"SECOND_ACCESS_KEY_ID": m.AccessKey, "SECOND_SECRET_ACCESS_KEY": m.SecretKey,
		"SFTP_KNOWN_HOSTS": sshd.KnownHosts, "SFTP_PRIVATE_KEY": sshd.PrivateKey}
	cfg := env(vars)
	first := s3store.Settings{Bucket: full, Prefix: "pg", Endpoint: m.Endpoint, Region: m.Region, PathStyle: boolp(true), Keys: "SECOND"}
	all := []spec.Archive{
		first.Archive(),
		s3store.Settings{Bucket: lacking, Endpoint: lackingProvider(t, m.Endpoint), Region: m.Region, PathStyle: boolp(true), Keys: "SECOND"}.Archive(),
		filestore.Settings{Dir: dir}.Archive(),
		sftpDest,
	}
	var out bytes.Buffer
	c := &preflighttest.Lines{W: &out}
	for i := range all {
		Check(context.Background(), c, cfg, all, i)
	}
	t.Logf("check:\n%s", out.String())
	fullURL, lackingURL := "s3://"+full+"/pg", "s3://"+lacking
	for _, want := range []string{
		"ok    archive is writable: wrote " + fullURL + "/_pgoffsite-check/",
		"warn  archive " + fullURL + ": versioning is off: an overwrite or a delete destroys an archive's bytes; run `pgoffsite setup-bucket --destination 1` with the bucket owner's keys",
		"warn  archive " + fullURL + ": no lifecycle rules",
		"ok    archive " + fullURL + ": a multipart upload of two parts with sha256 checksums works (probe: 5.0 MiB sent, the upload aborted)",
		"ok    archive is writable: wrote " + lackingURL + "/_pgoffsite-check/",
		"warn  archive " + lackingURL + ": the store rejects conditional writes (If-None-Match: *)",
		"warn  archive " + lackingURL + ": the store does not implement versioning",
		"warn  archive " + lackingURL + ": the store does not implement Object Lock",
		"warn  archive " + lackingURL + ": the store does not implement lifecycle rules",
		"ok    archive is writable: wrote " + dir + "/_pgoffsite-check/",
		"ok    archive is writable: wrote " + sftpDest.String() + "/_pgoffsite-check/",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if c.Failed != 0 {
		t.Errorf("%d failures, want none", c.Failed)
	}
	if ups := m.IncompleteUploads(t, full); len(ups) != 0 {
		t.Errorf("the multipart probe left uploads open: %v", ups)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(line, "s3://") && !strings.Contains(line, dir) && !strings.Contains(line, "sftp://") &&
			!strings.HasPrefix(line, "      fix:") {
			t.Errorf("a line names no destination: %q", line)
		}
	}
	if strings.Contains(out.String(), m.SecretKey) {
		t.Error("the output shows a secret key")
	}

	if probes, _ := filepath.Glob(filepath.Join(sshd.Root, "_pgoffsite-check", "*.txt")); len(probes) != 1 {
		t.Errorf("probe files on the SFTP server: %q", probes)
	}

	// An SFTP server presenting another host key than the pinned one: refused, nothing written.
	out.Reset()
	c = &preflighttest.Lines{W: &out}
	vars["SFTP_KNOWN_HOSTS"] = sshd.OtherKnownHosts(t)
	Check(context.Background(), c, cfg, all, 3)
	vars["SFTP_KNOWN_HOSTS"] = sshd.KnownHosts
	if !strings.Contains(out.String(), "FAIL  archive "+sftpDest.String()+": ") || !strings.Contains(out.String(), "host key") {
		t.Errorf("a wrong host key:\n%s", out.String())
	}
	if probes, _ := filepath.Glob(filepath.Join(sshd.Root, "_pgoffsite-check", "*")); len(probes) != 1 {
		t.Errorf("files after the refused host key: %q", probes)
	}

	// Settings that make the first bucket unwritable: each fails the probe write, and says why.
	for _, tc := range []struct {
		name   string
		change func(*s3store.Settings)
		want   []string
	}{
		// A Glacier storage class on a provider that is not AWS: a warning that says why the
		// probe write is refused, and the failure.
		{"GLACIER on MinIO", func(a *s3store.Settings) { a.StorageClass = "GLACIER" },
			[]string{"warn  archive " + fullURL + ": storage class GLACIER is Amazon S3's; 127.0.0.1:", "FAIL  archive " + fullURL + " is not writable"}},
		// Without its own region= it is signed for AWS_REGION, which this provider refuses.
		{"signed for AWS_REGION", func(a *s3store.Settings) { a.Region = "" },
			[]string{"FAIL  archive " + fullURL + " is not writable", "region"}},
		// checksum=sha256 on a store refusing the checksum headers as R2 does: the probe write
		// fails naming the parameter and its fix.
		{"checksum=sha256 refused", func(a *s3store.Settings) {
			a.Endpoint, a.Checksum = s3errtest.RefuseChecksums(t, m.Endpoint, s3errtest.R2Refusal).URL, s3store.ChecksumSHA256
		}, []string{"FAIL  archive s3://" + full + "/pg is not writable: the store refuses the checksum headers (x-amz-checksum-*) that checksum=sha256 sends", "fix: set checksum=md5 on this destination"}},
		// Without its own keys, the destination gets the default chain's wrong ones: the keys
		// were what made it writable.
		{"with the chain's keys", func(a *s3store.Settings) { a.Keys = "" },
			[]string{"FAIL  archive " + fullURL + " is not writable"}},
	} {
		out.Reset()
		c = &preflighttest.Lines{W: &out}
		changed := first
		tc.change(&changed)
		Check(context.Background(), c, cfg, append([]spec.Archive{changed.Archive()}, all[1:]...), 0)
		for _, want := range tc.want {
			if !strings.Contains(out.String(), want) || c.Failed != 1 {
				t.Errorf("%s (%d failures), lacks %q:\n%s", tc.name, c.Failed, want, out.String())
			}
		}
	}
}

// A directory under RETENTION: the preflight says nothing expires archives there, and still
// probes it; a scheme no kind reads fails, named.
func TestCheckDirectoryUnderRetentionAndUnknownScheme(t *testing.T) {
	pol, err := retention.Parse("daily=7d")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	c := &preflighttest.Lines{W: &out}
	Check(context.Background(), c, spec.Env{Retention: pol}, []spec.Archive{filestore.Settings{Dir: dir}.Archive()}, 0)
	for _, want := range []string{
		"warn  archive file://" + dir + ": RETENTION: the class is recorded in each manifest and the markers are files there, but nothing expires archives in a directory or on an SFTP server: remove old ones yourself",
		"ok    archive is writable: wrote " + dir + "/_pgoffsite-check/",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if c.Failed != 0 {
		t.Errorf("%d failures, want none", c.Failed)
	}
	out.Reset()
	Check(context.Background(), c, env(nil), []spec.Archive{{Scheme: "ftp"}}, 0)
	if !strings.Contains(out.String(), `FAIL  archive : unsupported scheme "ftp"`) || c.Failed != 1 {
		t.Errorf("an unknown scheme (%d failures):\n%s", c.Failed, out.String())
	}
}

// Each safety feature's state is one line, word for word, with nothing left of the formats.
func TestCheckFeaturesLines(t *testing.T) {
	a := s3store.Settings{Bucket: "b", Prefix: "pg"}.Archive()
	for _, tc := range []struct {
		state bucket.Support
		want  string
	}{
		{bucket.On, "ok    archive s3://b/pg: versioning is on (an overwrite or delete keeps the older bytes)\n" +
			"ok    archive s3://b/pg: Object Lock is enabled\n" +
			"ok    archive s3://b/pg: lifecycle rules are set\n"},
		{bucket.Off, "warn  archive s3://b/pg: versioning is off: an overwrite or a delete destroys an archive's bytes; run `pgoffsite setup-bucket` with the bucket owner's keys\n" +
			"warn  archive s3://b/pg: no lifecycle rules: archives are kept (and paid for) forever, and the parts of interrupted uploads are never cleaned up; run `pgoffsite setup-bucket`\n"},
		{bucket.Unknown, ""},
	} {
		var out bytes.Buffer
		checkFeatures(&preflighttest.Lines{W: &out}, a, bucket.Features{Versioning: tc.state, ObjectLock: tc.state, Lifecycle: tc.state}, "pgoffsite setup-bucket")
		if out.String() != tc.want {
			t.Errorf("%v:\n%s\nwant:\n%s", tc.state, out.String(), tc.want)
		}
	}
}

// A destination without checksum= on a store refusing the checksum headers, each provider's way:
// the preflight's writes fall back to Content-MD5, it says so naming checksum=md5, and the
// multipart probe goes through with MD5 and leaves no upload open.
func TestCheckChecksumRefusingStore(t *testing.T) {
	m := testenv.StartMinIO(t)
	bucketName := m.CreateBucket(t, "check-refusing")
	cfg := env(map[string]string{"SECOND_ACCESS_KEY_ID": m.AccessKey, "SECOND_SECRET_ACCESS_KEY": m.SecretKey})
	for _, how := range s3errtest.Refusals {
		t.Run(how.Name, func(t *testing.T) {
			proxy := s3errtest.RefuseChecksums(t, m.Endpoint, how)
			a := s3store.Settings{Bucket: bucketName, Prefix: how.Name, Endpoint: proxy.URL, Region: m.Region, PathStyle: boolp(true), Keys: "SECOND"}.Archive()
			var out bytes.Buffer
			c := &preflighttest.Lines{W: &out}
			Check(context.Background(), c, cfg, []spec.Archive{a}, 0)
			t.Logf("check:\n%s", out.String())
			for _, want := range []string{
				"ok    archive is writable: wrote " + a.String() + "/_pgoffsite-check/",
				"warn  archive " + a.String() + ": the store refuses the checksum headers (x-amz-checksum-*): backups fall back to Content-MD5 at their first request, with a warning; add checksum=md5",
				"ok    archive " + a.String() + ": a multipart upload of two parts with md5 checksums works",
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if c.Failed != 0 || proxy.Refused() == 0 {
				t.Errorf("%d failures, %d requests refused: want none, and some", c.Failed, proxy.Refused())
			}
			if ups := m.IncompleteUploads(t, bucketName); len(ups) != 0 {
				t.Errorf("the multipart probe left uploads open: %v", ups)
			}
		})
	}
}
