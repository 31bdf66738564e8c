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
				for _, want := range append(want, "s3://"+w.bucket+"/pgbackups") {
					if !strings.Contains(out, want) {
						t.Errorf("%s: the output lacks %q", args[0], want)
					}
				}
				if strings.Contains(out, "https response error") {
					t.Errorf("%s: the SDK's raw text reached the output", args[0])
				}
			}
		})
	}
}
