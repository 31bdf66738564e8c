package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgoffsite/pgoffsite/internal/config"
	"github.com/pgoffsite/pgoffsite/internal/dest"
	"github.com/pgoffsite/pgoffsite/internal/dest/spec"
	"github.com/pgoffsite/pgoffsite/internal/testenv"
)

func boolp(b bool) *bool { return &b }

// The redactor scrubs the key pair a destination's keys=NAME names.
func TestRedactorKnowsNamedKeys(t *testing.T) {
	t.Setenv("B2_ACCESS_KEY_ID", "b2-id-0123")
	t.Setenv("B2_SECRET_ACCESS_KEY", "b2-secret")
	b2 := spec.Archive{Scheme: "s3", Bucket: "b", Keys: "B2"}
	withB2 := config.Config{Archives: []spec.Archive{{Scheme: "s3"}, b2}}
	if got := newRedactor(withB2).Scrub("signed with b2-secret by b2-id-0123"); strings.Contains(got, "b2-secret") || strings.Contains(got, "b2-id") {
		t.Errorf("the redactor leaves the keys=B2 pair: %q", got)
	}
}

// TestPickS3Destination: --destination by number (ARCHIVE_URL's order, counting every scheme)
// or by URL; with several S3 destinations and no choice, an error listing them.
func TestPickS3Destination(t *testing.T) {
	aws := spec.Archive{Scheme: "s3", Bucket: "aws-archive", Prefix: "pg"}
	file := spec.Archive{Scheme: "file", Dir: "/mnt/archive"}
	b2 := spec.Archive{Scheme: "s3", Bucket: "b2-archive", Keys: "B2"}
	one := config.Config{Archives: []spec.Archive{file, aws}}
	two := config.Config{Archives: []spec.Archive{aws, file, b2}}

	for _, c := range []struct {
		cfg    config.Config
		choice string
		want   string // the bucket, or the error's text
	}{
		{one, "", "aws-archive"},
		{one, "2", "aws-archive"},
		{two, "1", "aws-archive"},
		{two, "3", "b2-archive"},
		{two, "s3://b2-archive", "b2-archive"},
		{two, "s3://aws-archive/pg/", "aws-archive"},
		{two, "", "ARCHIVE_URL names 2 S3 destinations: say which with one of\n  --destination 1   (or --destination s3://aws-archive/pg)\n  --destination 3   (or --destination s3://b2-archive)"},
		{two, "2", "--destination 2 is file:///mnt/archive, not an S3 bucket"},
		{two, "4", "--destination 4: ARCHIVE_URL names 3 destination(s)"},
		{two, "0", "--destination 0: ARCHIVE_URL names 3 destination(s)"},
		{two, "s3://other", "--destination s3://other is not one of ARCHIVE_URL's S3 destinations"},
		{config.Config{Archives: []spec.Archive{file}}, "", "ARCHIVE_URL names no s3:// destination"},
		{config.Config{Archives: []spec.Archive{aws, {Scheme: "s3", Bucket: "aws-archive", Prefix: "pg", Endpoint: "https://s3.eu-central-003.backblazeb2.com"}}},
			"s3://aws-archive/pg", "--destination s3://aws-archive/pg names 2 destinations (the same bucket at different endpoints): give its number instead"},
	} {
		a, err := pickS3Destination(c.cfg, c.choice)
		got := a.Bucket
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%d destinations, --destination %q: %q, want %q", len(c.cfg.Archives), c.choice, got, c.want)
		}
	}
}

// TestPolicyDestinationFlag: the printed policy is the chosen destination's; a choice that is
// not one is a usage error.
func TestPolicyDestinationFlag(t *testing.T) {
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ARCHIVE_URL", "s3://archive-bucket/db/prod")
	for _, args := range [][]string{{"policy"}, {"policy", "--destination", "1"}, {"policy", "--destination", "s3://archive-bucket/db/prod"}} {
		var out, errs bytes.Buffer
		if code := testRun(context.Background(), args, &out, &errs); code != ExitOK || !strings.Contains(out.String(), `"arn:aws:s3:::archive-bucket/db/prod/*"`) {
			t.Errorf("%q: exit %d\n%s%s", args, code, out.String(), errs.String())
		}
	}
	var out, errs bytes.Buffer
	if code := testRun(context.Background(), []string{"policy", "--destination", "2"}, &out, &errs); code != ExitUsage ||
		!strings.Contains(errs.String(), "--destination 2: ARCHIVE_URL names 1 destination(s); the S3 ones are\n  --destination 1   (or --destination s3://archive-bucket/db/prod)") {
		t.Errorf("--destination 2: exit %d\n%s", code, errs.String())
	}
}

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

// TestCheckEveryDestination: check probes every destination — an S3 bucket on a second provider
// reached with its own endpoint and keys while the AWS variables point elsewhere, a provider
// lacking the safety features, a directory, an SFTP server — and names the destination in
// every line it prints about one.
func TestCheckEveryDestination(t *testing.T) {
	m := testenv.StartMinIO(t)
	full := m.CreateBucket(t, "check-full")
	lacking := m.CreateBucket(t, "check-lacking")
	for _, k := range configVars {
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
	t.Setenv("SECOND_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("SECOND_SECRET_ACCESS_KEY", m.SecretKey)
	dir := filepath.Join(t.TempDir(), "archive")
	sshd := testenv.StartSSHD(t)
	t.Setenv("SFTP_PRIVATE_KEY", sshd.PrivateKey)
	sftpDest := spec.Archive{Scheme: "sftp", User: sshd.User, Host: sshd.Host, Port: sshd.Port, Dir: sshd.Root, KeyVar: "SFTP_PRIVATE_KEY"}

	cfg := config.Config{Region: "eu-west-1", S3StorageClass: "STANDARD", S3Endpoint: closed, KnownHosts: sshd.KnownHosts, Archives: []spec.Archive{
		{Scheme: "s3", Bucket: full, Prefix: "pg", Endpoint: m.Endpoint, Region: m.Region, PathStyle: boolp(true), Keys: "SECOND"},
		{Scheme: "s3", Bucket: lacking, Endpoint: lackingProvider(t, m.Endpoint), Region: m.Region, PathStyle: boolp(true), Keys: "SECOND"},
		{Scheme: "file", Dir: dir},
		sftpDest,
	}}
	var out bytes.Buffer
	c := &checker{w: &out}
	for i, a := range cfg.Archives {
		dest.Check(context.Background(), c, cfg, i, a)
	}
	t.Logf("check:\n%s", out.String())
	fullURL, lackingURL := "s3://"+full+"/pg", "s3://"+lacking
	for _, want := range []string{
		"ok    archive is writable: wrote " + fullURL + "/_pgoffsite-check/",
		"warn  archive " + fullURL + ": versioning is off: an overwrite or a delete destroys an archive's bytes; run `pgoffsite setup-bucket --destination 1` with the bucket owner's keys",
		"warn  archive " + fullURL + ": no lifecycle rules",
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
	if c.failed != 0 {
		t.Errorf("%d failures, want none", c.failed)
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
	c = &checker{w: &out}
	wrongKey := cfg
	wrongKey.KnownHosts = sshd.OtherKnownHosts(t)
	dest.Check(context.Background(), c, wrongKey, 3, sftpDest)
	if !strings.Contains(out.String(), "FAIL  archive "+sftpDest.String()+": ") || !strings.Contains(out.String(), "host key") {
		t.Errorf("a wrong host key:\n%s", out.String())
	}
	if probes, _ := filepath.Glob(filepath.Join(sshd.Root, "_pgoffsite-check", "*")); len(probes) != 1 {
		t.Errorf("files after the refused host key: %q", probes)
	}

	// A Glacier storage class on a provider that is not AWS: a warning that says why the probe
	// write is refused, and the failure.
	out.Reset()
	c = &checker{w: &out}
	glacier := cfg.Archives[0]
	glacier.StorageClass = "GLACIER"
	dest.Check(context.Background(), c, cfg, 0, glacier)
	if !strings.Contains(out.String(), "warn  archive "+fullURL+": storage class GLACIER is Amazon S3's; 127.0.0.1:") ||
		!strings.Contains(out.String(), "FAIL  archive "+fullURL+" is not writable") || c.failed != 1 {
		t.Errorf("GLACIER on MinIO:\n%s", out.String())
	}

	// Without its own region= it is signed for AWS_REGION, which this provider refuses.
	out.Reset()
	c = &checker{w: &out}
	noRegion := cfg.Archives[0]
	noRegion.Region = ""
	dest.Check(context.Background(), c, cfg, 0, noRegion)
	if !strings.Contains(out.String(), "FAIL  archive "+fullURL+" is not writable") || !strings.Contains(out.String(), "region") {
		t.Errorf("signed for AWS_REGION:\n%s", out.String())
	}

	// Without its own keys, the destination gets the default chain's wrong ones: the keys were
	// what made it writable.
	out.Reset()
	c = &checker{w: &out}
	chain := cfg.Archives[0]
	chain.Keys = ""
	dest.Check(context.Background(), c, cfg, 0, chain)
	if !strings.Contains(out.String(), "FAIL  archive "+fullURL+" is not writable") {
		t.Errorf("with the chain's keys:\n%s", out.String())
	}
}

// TestSetupBucketOffAWSWarnsOfGlacier: setup-bucket for a destination that is not on AWS says
// that its transitions go to an Amazon storage class, and how to leave them out.
func TestSetupBucketOffAWSWarnsOfGlacier(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range map[string]string{"ARCHIVE_URL": "s3://" + m.CreateBucket(t, "offaws") + "/pg", "AWS_REGION": m.Region,
		"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey, "AWS_ENDPOINT_URL_S3": m.Endpoint, "S3_FORCE_PATH_STYLE": "true"} {
		t.Setenv(k, v)
	}
	var out, errs bytes.Buffer
	code := testRun(context.Background(), []string{"setup-bucket", "--dry-run"}, &out, &errs)
	want := "the lifecycle rules move archives to GLACIER, an Amazon S3 storage class most S3-compatible providers lack; if the store refuses them, run with --transition-days -1"
	if code != ExitOK || !strings.Contains(out.String(), want) {
		t.Errorf("exit %d\n%s%s", code, out.String(), errs.String())
	}
	out.Reset()
	if testRun(context.Background(), []string{"setup-bucket", "--dry-run", "--transition-days", "-1"}, &out, &errs); strings.Contains(out.String(), "GLACIER") {
		t.Errorf("warned without transitions:\n%s", out.String())
	}
}

// TestBucketCommandsPerDestination: with two S3 destinations on two servers with different
// keys, policy and setup-bucket refuse to guess, and --destination picks the one they work on,
// reached with its own endpoint and keys.
func TestBucketCommandsPerDestination(t *testing.T) {
	first, second := testenv.StartMinIO(t), testenv.StartOwnMinIO(t)
	for _, k := range configVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	b1, b2 := first.CreateBucket(t, "dest-one"), "pgoffsite-dest-two-"+fmt.Sprint(os.Getpid())
	env := map[string]string{
		"ARCHIVE_URL": "s3://" + b1 + "/pg s3://" + b2 + "/db?endpoint=" + second.Endpoint + "&region=" + second.Region + "&path_style=true&keys=SECOND",
		"AWS_REGION":  first.Region, "AWS_ACCESS_KEY_ID": first.AccessKey, "AWS_SECRET_ACCESS_KEY": first.SecretKey,
		"AWS_ENDPOINT_URL_S3": first.Endpoint, "S3_FORCE_PATH_STYLE": "true",
		"SECOND_ACCESS_KEY_ID": second.AccessKey, "SECOND_SECRET_ACCESS_KEY": second.SecretKey,
		"BUCKET_TRANSITION_DAYS": "-1",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := testRun(context.Background(), args, &out, &errs)
		s := out.String() + errs.String()
		t.Logf("pgoffsite %s → exit %d\n%s", strings.Join(args, " "), code, s)
		if strings.Contains(s, second.SecretKey) || strings.Contains(s, first.SecretKey) {
			t.Errorf("a secret key in the output of %q", args)
		}
		return code, s
	}
	list := "--destination 1   (or --destination s3://" + b1 + "/pg)\n  --destination 2   (or --destination s3://" + b2 + "/db)"
	for _, cmd := range []string{"policy", "setup-bucket"} {
		if code, out := run(cmd); code != ExitUsage || !strings.Contains(out, "ARCHIVE_URL names 2 S3 destinations: say which with one of\n  "+list) {
			t.Errorf("%s without --destination: exit %d", cmd, code)
		}
	}
	if code, out := run("policy", "--destination", "2"); code != ExitOK || !strings.Contains(out, `"arn:aws:s3:::`+b2+`/db/*"`) || strings.Contains(out, b1) {
		t.Errorf("policy --destination 2: exit %d", code)
	}
	if code, out := run("setup-bucket", "--destination", "s3://"+b2+"/db"); code != ExitOK || !strings.Contains(out, "s3://"+b2+"/db:") {
		t.Errorf("setup-bucket --destination s3://%s/db: exit %d", b2, code)
	}
	// Made on the second server, with its keys; the first server has no such bucket.
	if _, err := second.Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &b2}); err != nil {
		t.Errorf("the bucket is not on the second server: %v", err)
	}
	if _, err := first.Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &b2}); err == nil {
		t.Error("the bucket was made on the first server")
	}
}

// TestBackupToSecondProvider: a backup lands byte for byte on a second S3 server reached with
// its destination's own endpoint, region and keys, beside the one the AWS variables name.
func TestBackupToSecondProvider(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 200)
	second := testenv.StartOwnMinIO(t)
	b2 := second.CreateBucket(t, "second")
	env := w.env("shop")
	env["ARCHIVE_URL"] += " s3://" + b2 + "/copy?endpoint=" + second.Endpoint + "&region=" + second.Region + "&path_style=true&keys=SECOND"
	env["SECOND_ACCESS_KEY_ID"], env["SECOND_SECRET_ACCESS_KEY"] = second.AccessKey, second.SecretKey
	if code, out := w.run(env, "backup"); code != ExitOK || strings.Contains(out, second.SecretKey) {
		t.Fatalf("backup: exit %d", code)
	}
	m, dump := w.manifest("shop", "DATABASE")
	got, err := second.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &b2, Key: aws.String("copy/" + m.Key)})
	if err != nil {
		t.Fatalf("the second copy: %v", err)
	}
	defer got.Body.Close()
	copyBytes, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copyBytes, dump) {
		t.Errorf("the second copy differs: %d bytes, want %d", len(copyBytes), len(dump))
	}
}
