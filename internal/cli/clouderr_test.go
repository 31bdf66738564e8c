package cli

import (
	"strings"
	"testing"

	"github.com/pgoffsite/pgoffsite/internal/s3err/s3errtest"
)

// cloudCommands are the commands that talk to the bucket, each as a test runs it.
var cloudCommands = [][]string{
	{"check"},
	{"backup"},
	{"status"},
	{"verify"},
	{"restore", "--from", "shop/DATABASE_URL/2026/01/02/b042.dump", "--to", "shop:DATABASE_URL", "--confirm", "shop"},
}

// saysAll fails t for each of wants that the output of run lacks.
func saysAll(t *testing.T, run, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s: the output lacks %q", run, want)
		}
	}
}

// TestCloudErrorsStandIn: every command meets each of AWS's error answers (a stand-in for S3
// answering them as AWS does) with one line naming the destination, the variable to set right
// and the command that helps, and ends with the documented exit status: 1, a run that failed
// (the configuration was read fine and the store answered).
func TestCloudErrorsStandIn(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	says := map[string][]string{
		"AccessDenied":                 {"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "`pgoffsite policy"},
		"InvalidAccessKeyId":           {"does not know the access key ID", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		"SignatureDoesNotMatch":        {"does not belong to the access key ID", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		"NoSuchBucket":                 {"bucket does not exist", "ARCHIVE_URL", "`pgoffsite setup-bucket`"},
		"PermanentRedirect":            {"the bucket is in ap-southeast-2", "set AWS_REGION (or region= of this destination in ARCHIVE_URL) to ap-southeast-2"},
		"AuthorizationHeaderMalformed": {"the bucket is in us-east-2", "set AWS_REGION (or region= of this destination in ARCHIVE_URL) to us-east-2"},
	}
	denied := []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "`pgoffsite policy --reader`", "keys that are wrong"}
	headSays := map[string][]string{"AccessDenied": denied, "InvalidAccessKeyId": denied, "SignatureDoesNotMatch": denied,
		"NoSuchBucket": {"no archive at", "check --from", "the bucket's name in ARCHIVE_URL"}}
	for _, a := range s3errtest.All {
		if a.Name == "SlowDown" {
			continue // retried ten times over minutes by every command: TestStandInAnswersExplained shows its line
		}
		t.Run(a.Name, func(t *testing.T) {
			srv := s3errtest.Serve(t, a)
			for _, args := range cloudCommands {
				env := w.env("shop")
				env["AWS_ENDPOINT_URL_S3"] = srv.URL
				code, out := w.run(env, args...)
				if code != ExitFailed {
					t.Errorf("%s: exit %d, want %d", args[0], code, ExitFailed)
				}
				want := says[a.Name]
				if head, ok := headSays[a.Name]; ok && args[0] == "restore" {
					want = head // restore asks with HEAD, whose answer has a status and headers only
				}
				if args[0] == "status" && strings.Contains(out, "missing (# archived") {
					t.Errorf("status shows a calendar of a destination it could not list")
				}
				saysAll(t, args[0], out, append(want, "s3://"+w.bucket+"/pgbackups")...)
				if strings.Contains(out, "https response error") {
					t.Errorf("%s: the SDK's raw text reached the output", args[0])
				}
			}
		})
	}
}

// TestCloudErrorsMinIO: what a real S3 server answers to wrong keys, a missing bucket and a
// policy that denies: each command's line names the destination, the variable and the command
// that helps, and it exits 1. status and verify with the uploader's keys say that these are the
// uploader's, and which keys they need, instead of a calendar of missing archives.
func TestCloudErrorsMinIO(t *testing.T) {
	k := newKeyed(t) // users holding what `pgoffsite policy` and `policy --reader` print
	w := k.w
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	if code, _ := w.run(w.env("shop"), "backup"); code != ExitOK {
		t.Fatal("backup with the owner's keys failed")
	}
	keys := func(id, secret string) map[string]string {
		return withEnv(w.env("shop"), "AWS_ACCESS_KEY_ID", id, "AWS_SECRET_ACCESS_KEY", secret)
	}
	uploader := keys("uploader-"+w.bucket, "uploader-secret-0123456789")
	reader := keys("reader-"+w.bucket, "reader-secret-0123456789")
	noBucket := w.env("shop")
	noBucket["ARCHIVE_URL"] = "s3://no-such-bucket-" + w.bucket + "/pgbackups"
	for _, c := range []struct {
		name     string
		env      map[string]string
		commands []string
		says     []string
	}{
		{"uploader's keys read", uploader, []string{"status", "verify"},
			[]string{"these keys may not read the archives", "uploader's", "verify, status and restore need the reader's keys", "`pgoffsite policy --reader`", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{"reader's keys write", reader, []string{"check", "backup"},
			[]string{"these keys may not write the archives", "`pgoffsite policy` prints", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{"wrong secret", keys(w.minio.AccessKey, "not-the-secret-0123456789"), []string{"check", "backup", "status", "verify"},
			[]string{"the secret access key does not belong to the access key ID (SignatureDoesNotMatch)", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{"unknown key", keys("AKIANOBODYKNOWS00000", "whatever-secret-0123456789"), []string{"check", "backup", "status", "verify"},
			[]string{"the store does not know the access key ID (InvalidAccessKeyId)", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
		{"missing bucket", noBucket, []string{"check", "backup", "status", "verify"},
			[]string{"the bucket does not exist (NoSuchBucket)", "ARCHIVE_URL", "`pgoffsite setup-bucket`"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, command := range c.commands {
				code, out := w.run(c.env, command)
				if code != ExitFailed {
					t.Errorf("%s: exit %d, want %d", command, code, ExitFailed)
				}
				saysAll(t, command, out, append(c.says, c.env["ARCHIVE_URL"])...)
				if strings.Contains(out, "missing (# archived") || strings.Contains(out, "upload finished") {
					t.Errorf("%s: a calendar of missing archives, or a finished upload, before the failure", command)
				}
			}
		})
	}
}

// TestUnreachableStoreInCommands: a host that does not resolve and a certificate nobody trusts
// are said with the setting to check, exit 1; AWS_REGION spelled unlike a region is refused
// before any request, exit 2, naming the variable and an example.
func TestUnreachableStoreInCommands(t *testing.T) {
	w := newWorld(t)
	w.sim.AddApp("shop")
	w.database("shop", "DATABASE", 10)
	untrusted := s3errtest.ServeTLS(t, s3errtest.AccessDenied)
	for _, c := range []struct {
		endpoint string
		says     []string
	}{
		{"https://s3.pgoffsite-test.invalid", []string{"host name does not resolve", "check the host in AWS_ENDPOINT_URL_S3"}},
		{untrusted.URL, []string{"TLS handshake", "check AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"}},
	} {
		for _, command := range []string{"check", "backup", "status", "verify"} {
			env := w.env("shop")
			env["AWS_ENDPOINT_URL_S3"] = c.endpoint
			code, out := w.run(env, command)
			if code != ExitFailed {
				t.Errorf("%s at %s: exit %d, want %d", command, c.endpoint, code, ExitFailed)
			}
			saysAll(t, command+" at "+c.endpoint, out, c.says...)
		}
	}
	if untrusted.Requests() != 0 {
		t.Errorf("the untrusted store was sent %d requests", untrusted.Requests())
	}

	env := w.env("shop")
	delete(env, "AWS_ENDPOINT_URL_S3") // Amazon S3 itself
	env["AWS_REGION"] = "eu-west1"
	for _, command := range []string{"check", "backup", "status", "verify"} {
		code, out := w.run(env, command)
		if code != ExitUsage || !strings.Contains(out, `AWS_REGION: "eu-west1" is not the name of an AWS region`) || !strings.Contains(out, "e.g. eu-west-1") {
			t.Errorf("%s with AWS_REGION=eu-west1: exit %d, want %d naming AWS_REGION and an example", command, code, ExitUsage)
		}
	}
}
